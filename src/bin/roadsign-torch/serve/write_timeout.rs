//! A connection whose writes fail once one has waited longer than a limit:
//! a client that stops reading its answer (an annotated image or video)
//! would otherwise pin the answer, and its files, for as long as it likes.
//! The limit is on a write waiting, not on the answer: a reader that keeps
//! taking bytes is cut only if the kernel, which wakes a blocked writer once
//! about a third of the send buffer has drained, sees that little go for
//! the whole limit (at 30 s, a reader slower than some tens of KiB/s).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Started when a write first waits; dropped when one goes through.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    pub fn new(inner: S, limit: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes on a finished write (and forgets any wait), or fails a write
    /// that has waited past the limit.
    fn after<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if write.is_ready() {
            self.stalled = None;
            return write;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {:.0} s",
                    self.limit.as_secs_f64()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after(cx, write)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after(cx, write)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flush = Pin::new(&mut this.inner).poll_flush(cx);
        this.after(cx, flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shutdown = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.after(cx, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        let (server, _client) = tokio::io::duplex(16);
        let mut server = WriteTimeout::new(server, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let err = server.write_all(&[7u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_gets_everything() {
        let (server, mut client) = tokio::io::duplex(16);
        let mut server = WriteTimeout::new(server, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            let mut chunk = [0u8; 16];
            loop {
                // Each read comes 4 s after the last: under the limit, though
                // the whole answer takes far longer than it.
                tokio::time::sleep(Duration::from_secs(4)).await;
                match client.read(&mut chunk).await.unwrap() {
                    0 => return received,
                    n => received.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let answer: Vec<u8> = (0..128u8).collect();
        server.write_all(&answer).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), answer);
    }
}
