//! moto's S3 server (installed by `make test` into .deps/moto) on 127.0.0.1.
//! Shared by the runner's tests (through `#[path]`) and the binary's.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with_auth_after(None)
    }

    /// With `auth_after`, requests after that many are authenticated
    /// against moto's IAM (unknown keys are refused).
    pub fn start_with_auth_after(auth_after: Option<u32>) -> Moto {
        // The workspace root: the first folder up from this crate with .deps.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|d| d.join(".deps").is_dir())
            .expect("the workspace's .deps (run `make test`)");
        let server = root.join(".deps/moto/bin/moto_server");
        assert!(
            server.is_file(),
            "{} missing: `make test` installs it",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(n) = auth_after {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let moto = Moto {
            child: command.spawn().unwrap(),
            endpoint: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&moto.endpoint).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn create_bucket(&self, name: &str) {
        let mut stream = TcpStream::connect(&self.endpoint).unwrap();
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.endpoint
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }

    /// The variables a step gets in a cluster, pointing at this server.
    pub fn env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", format!("http://{}", self.endpoint)),
            ("ROADSIGN_BUCKET", bucket.into()),
        ]
    }
}
