//! The invariants ARCHITECTURE.md states about crates and executables,
//! checked on the workspace's `cargo metadata` and on the built executables,
//! and the hand-over between executables seen from the command line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::Project;

/// Each workspace package's normal (linked) dependencies: direct ones, and
/// every package reachable through them.
struct Graph {
    direct: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn load() -> Graph {
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline", "--locked"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: BTreeMap<&str, &str> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        let mut direct = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().unwrap() {
            let linked = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| names[d["pkg"].as_str().unwrap()].to_string())
                .collect();
            direct.insert(names[node["id"].as_str().unwrap()].to_string(), linked);
        }
        Graph { direct }
    }

    fn reachable(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.to_string()];
        while let Some(p) = todo.pop() {
            for dep in self.direct.get(&p).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    }

    fn assert_free_of(&self, package: &str, forbidden: &[&str]) {
        let reachable = self.reachable(package);
        for f in forbidden {
            assert!(!reachable.contains(*f), "{package} depends on {f}");
        }
    }
}

#[test]
fn crates_depend_as_the_map_says() {
    let graph = Graph::load();
    graph.assert_free_of(
        "runner",
        &["nodes", "roadsign", "yolo", "yolo-core", "tch", "leptess"],
    );
    assert!(
        !graph.direct["runner"].contains("hyper"),
        "runner uses hyper"
    );
    graph.assert_free_of(
        "yolo-core",
        &["tch", "torch-sys", "leptess", "runner", "nodes"],
    );
    graph.assert_free_of("yolo", &["runner", "nodes", "leptess"]);
    graph.assert_free_of(
        "nodes",
        &["tch", "torch-sys", "yolo", "leptess", "tesseract-sys"],
    );
    graph.assert_free_of("tesseract-nodes", &["tch", "torch-sys", "yolo"]);
    graph.assert_free_of("torch-nodes", &["roadsign"]);
    graph.assert_free_of(
        "c10d",
        &[
            "runner",
            "nodes",
            "yolo",
            "yolo-core",
            "roadsign",
            "leptess",
        ],
    );
    // Typed errors in the libraries (the engine crates return `nodes`'
    // NodesError, as the declared signatures say); `anyhow` only in the binary.
    for library in [
        "runner",
        "yolo-core",
        "yolo",
        "nodes",
        "torch-nodes",
        "tesseract-nodes",
        "c10d",
    ] {
        assert!(
            !graph.direct[library].contains("anyhow"),
            "{library} uses anyhow"
        );
    }
    for library in ["runner", "yolo-core", "yolo", "nodes", "c10d"] {
        assert!(
            graph.direct[library].contains("thiserror"),
            "{library} has no thiserror"
        );
    }
    // The check itself sees what it looks for.
    assert!(graph.direct["roadsign"].contains("anyhow"));
    assert!(graph.reachable("torch-nodes").contains("tch"));
    assert!(graph.reachable("tesseract-nodes").contains("leptess"));
}

/// The non-test Rust sources of a crate: `(path, text)` with any
/// `#[cfg(test)] mod tests` block cut off.
fn library_sources(dir: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut todo = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(at) => text[..at].to_string(),
                    None => text,
                };
                out.push((path.display().to_string(), code));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// Lines of `sources` whose code uses `String` as an error type.
fn string_errors(sources: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, code) in sources {
        for (n, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let compact: String = code.split_whitespace().collect();
            if compact.contains(",String>") && compact.contains("Result<") {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn string_is_never_an_error_type_in_a_library() {
    let libraries = [
        "runner/src",
        "nodes/src",
        "yolo/src",
        "yolo-core/src",
        "torch-nodes/src",
        "tesseract-nodes/src",
    ];
    let sources: Vec<_> = libraries.iter().flat_map(|l| library_sources(l)).collect();
    let found = string_errors(&sources);
    assert!(found.is_empty(), "String errors:\n{}", found.join("\n"));
    // The check sees what it looks for.
    let planted = [(
        "planted.rs".to_string(),
        "fn f() -> Result<u8, String> { todo!() }".to_string(),
    )];
    assert_eq!(string_errors(&planted).len(), 1);
}

#[test]
fn the_architecture_map_names_modules_that_exist_and_cites_nothing_outside() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (name, text) in [("ARCHITECTURE.md", &map), ("README.md", &readme)] {
        assert!(
            !text.contains("SPEC"),
            "{name} cites a SPEC outside the repository"
        );
    }
    // Every module a table of the map names is a file or folder of its crate.
    let mut checked = 0;
    let mut crates: &[&str] = &[];
    for line in map.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            crates = match heading {
                "nodes modules" => &["nodes/src"],
                "yolo and yolo-core modules" => &["yolo/src", "yolo-core/src"],
                "runner modules" => &["runner/src"],
                "binary modules (`src/`)" => &["src"],
                other => panic!("a table the test does not know: {other}"),
            };
            continue;
        }
        let Some(cell) = line.strip_prefix("| `").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        if crates.is_empty() || cell.starts_with("module") {
            continue;
        }
        for module in format!("`{cell}").split(", ") {
            let path = module.trim_matches('`').replace("::", "/");
            let exists = crates.iter().any(|c| {
                let base = root.join(c).join(&path);
                base.with_extension("rs").is_file() || base.is_dir()
            });
            assert!(
                exists,
                "ARCHITECTURE.md names `{path}`, which is not in {crates:?}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 40,
        "only {checked} modules checked: is the map's table format changed?"
    );
    assert!(map.contains("run::task::run_node"));
}

/// The shared libraries an executable names in its ELF header.
fn needed(exe: &str) -> Vec<String> {
    let out = Command::new("readelf")
        .args(["--dynamic", "--wide", exe])
        .output()
        .expect("readelf (binutils) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

fn links(exe: &str, prefix: &str) -> bool {
    needed(exe).iter().any(|lib| lib.starts_with(prefix))
}

#[test]
fn only_the_engine_executables_link_libtorch_and_tesseract() {
    let light = env!("CARGO_BIN_EXE_roadsign");
    assert!(
        !needed(light).is_empty(),
        "readelf found the needed libraries"
    );
    for lib in ["libtorch", "libc10", "libtesseract", "liblept"] {
        assert!(!links(light, lib), "roadsign links {lib}");
    }
    let ocr = env!("CARGO_BIN_EXE_roadsign-ocr");
    assert!(links(ocr, "libtesseract") && !links(ocr, "libtorch"));
    let torch = env!("CARGO_BIN_EXE_roadsign-torch");
    assert!(links(torch, "libtorch_cpu") && links(torch, "libtesseract"));
}

const PIPELINES: &str = r#"
pipelines:
  light:
    nodes:
      - {func: noop, inputs: [], outputs: [a]}
      - {func: build_class_table, inputs: [params:classes], outputs: table}
  reading:
    nodes:
      - {func: configure_tesseract, inputs: [params:tesseract], outputs: config}
      - {func: run_ocr, inputs: [regions, regions, config, params:correction], outputs: reads}
  training:
    nodes:
      - {func: train_yolo, inputs: [model_input, params:train], outputs: [model, history]}
"#;

fn project() -> Project {
    Project::new(&[
        ("pipelines.yml", PIPELINES),
        ("catalog.yml", ""),
        (
            "parameters.yml",
            "classes: [{name: stop, has_text: true}]\n",
        ),
    ])
}

#[test]
fn runs_continue_in_the_smallest_executable_that_loads_their_engines() {
    let project = project();
    // Neither engine: runs here.
    let out = project.roadsign(&["-v", "run", "--pipeline", "light"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("continuing in"), "{stderr}");
    // Dry runs never hand over, whatever their nodes need: the checks run
    // here (and find the training data missing).
    let stderr = project.fails(&["-v", "run", "--dry-run", "--pipeline", "training"], 2);
    assert!(!stderr.contains("continuing in"), "{stderr}");
    assert!(stderr.contains("'model_input'"), "{stderr}");
    // Tesseract only: roadsign-ocr, whose own checks then refuse the missing input.
    let stderr = project.fails(&["-v", "run", "--pipeline", "reading"], 2);
    assert!(
        stderr.contains("this run (run_ocr) needs tesseract: continuing in")
            && stderr.contains("roadsign-ocr"),
        "{stderr}"
    );
    assert!(stderr.contains("regions"), "{stderr}");
    // libtorch: roadsign-torch.
    let stderr = project.fails(&["-v", "run", "--pipeline", "training"], 2);
    assert!(
        stderr.contains("needs torch: continuing in") && stderr.contains("roadsign-torch"),
        "{stderr}"
    );
}

#[test]
fn a_missing_engine_executable_is_an_installation_error() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("roadsign");
    std::fs::copy(env!("CARGO_BIN_EXE_roadsign"), &alone).unwrap();
    let project = project();
    let out = Command::new(&alone)
        .args(["run", "--pipeline", "training", "--project-dir"])
        .arg(project.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("this run (train_yolo) needs torch, which runs in")
            && stderr.contains("roadsign-torch")
            && stderr.contains("cargo install --path ."),
        "{stderr}"
    );
}
