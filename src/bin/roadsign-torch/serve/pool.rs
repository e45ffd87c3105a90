//! The bounded worker pool: CPU work (decoding, libtorch, Tesseract, ffmpeg
//! pipes) runs on these threads, never on the async executor's. A job that
//! finds the queue full is refused at once (the server answers 503), and a
//! job whose requester has gone (timed out, disconnected) is skipped.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct WorkerPool {
    sender: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

/// The queue was full.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl WorkerPool {
    /// `workers` threads, and room for `queue` jobs waiting for one.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<WorkerPool> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..workers.max(1))
            .map(|i| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("roadsign-worker-{i}"))
                    .spawn(move || work(&receiver))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(WorkerPool {
            sender: Some(sender),
            threads,
        })
    }

    pub fn size(&self) -> usize {
        self.threads.len()
    }

    /// Queues `f`; its result comes through the receiver.
    pub fn try_run<R, F>(&self, f: F) -> Result<oneshot::Receiver<R>, Busy>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return; // nobody waits for it any more
            }
            let _ = tx.send(f());
        });
        match self.sender.as_ref().map(|s| s.try_send(job)) {
            Some(Ok(())) => Ok(rx),
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => Err(Busy),
        }
    }

    /// Runs `f` once on every worker (each waits for the others, so that no
    /// worker takes two), and waits for all: the warm-up.
    pub fn on_every_worker<F>(&self, f: F) -> Vec<Result<(), String>>
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let barrier = Arc::new(Barrier::new(self.size()));
        let receivers: Vec<_> = (0..self.size())
            .map(|_| {
                let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
                let (tx, rx) = std::sync::mpsc::channel();
                let job: Job = Box::new(move || {
                    barrier.wait();
                    let _ = tx.send(f());
                });
                if let Some(sender) = &self.sender {
                    let _ = sender.send(job);
                }
                rx
            })
            .collect();
        receivers
            .into_iter()
            .map(|rx| rx.recv().unwrap_or_else(|_| Err("a worker stopped".into())))
            .collect()
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let guard = receiver.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // the pool was dropped
        }
    }
}

impl Drop for WorkerPool {
    /// Lets queued jobs finish, then joins the threads (their thread-local
    /// engines close as they end).
    fn drop(&mut self) {
        self.sender.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn jobs_run_on_the_workers_and_a_full_queue_refuses() {
        let pool = WorkerPool::new(1, 1).unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        // One job holds the worker, one waits in the queue, the third is refused.
        let first = pool
            .try_run(move || {
                let _ = wait.lock().unwrap().recv();
                std::thread::current().name().map(String::from)
            })
            .unwrap();
        // Give the worker time to take the first job off the queue.
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(5));
            if let Ok(second) = pool.try_run(|| 2) {
                assert_eq!(pool.try_run(|| 3).err(), Some(Busy));
                release.send(()).unwrap();
                assert_eq!(first.await.unwrap().as_deref(), Some("roadsign-worker-0"));
                assert_eq!(second.await.unwrap(), 2);
                return;
            }
        }
        panic!("the worker never took the first job");
    }

    #[test]
    fn abandoned_jobs_are_skipped() {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = WorkerPool::new(1, 4).unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let blocker = pool
            .try_run(move || {
                let _ = wait.lock().unwrap().recv();
            })
            .unwrap();
        // Queued behind the blocker, then abandoned before it can start.
        let counter = Arc::clone(&ran);
        drop(
            pool.try_run(move || counter.fetch_add(1, Ordering::SeqCst))
                .unwrap(),
        );
        release.send(()).unwrap();
        drop(blocker);
        drop(pool);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn every_worker_warms_up_once() {
        let pool = WorkerPool::new(3, 8).unwrap();
        let names = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&names);
        let results = pool.on_every_worker(move || {
            let name = std::thread::current().name().unwrap_or("").to_string();
            seen.lock().unwrap().push(name);
            Ok(())
        });
        assert_eq!(results, vec![Ok(()); 3]);
        let mut names = names.lock().unwrap().clone();
        names.sort();
        assert_eq!(
            names,
            [
                "roadsign-worker-0",
                "roadsign-worker-1",
                "roadsign-worker-2"
            ]
        );
    }
}
