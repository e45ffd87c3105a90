//! Start-up, the accept loop and the drain: the listener opens at once,
//! the pipeline starts and warms up on a thread of its own, and SIGTERM
//! turns `/ready` to 503 and lets in-flight requests finish.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::pool::WorkerPool;
use super::routes::handle;
use super::settings::Settings;
use super::state::{AppState, Engine};
use super::{v2, write_timeout};
use crate::predictor;
use roadsign::cli::{Cli, ServeArgs};

/// Warm-up on every worker (see [`crate::predictor::Predictor::warm_up`]), so the first
/// request pays for neither libtorch's module nor Tesseract's engine.
fn warm_up(engine: &Engine) -> Result<()> {
    let predictor = Arc::clone(&engine.predictor);
    let results = engine
        .pool
        .on_every_worker(move || predictor.warm_up().map_err(|e| e.to_string()));
    for result in results {
        result.map_err(|e| anyhow::anyhow!("warm-up failed: {e}"))?;
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub fn serve_command(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let config = roadsign::project::load_config(cli, &args.env, &args.params)?;
    let settings: Settings = match config.parameters.get("serve") {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| runner::Error::invalid(format!("parameters 'serve': {e}")))?,
        None => Settings::default(),
    };
    settings.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(
        config,
        settings,
        args.model.clone(),
        &args.host,
        args.port,
    ))?;
    // Jobs abandoned by timed-out requests may still run on the workers:
    // joining them could outlast the grace period, so exit here, once the
    // drain is over (exit still runs the process's exit handlers).
    std::process::exit(0)
}

async fn serve(
    config: runner::ProjectConfig,
    settings: Settings,
    model: Option<std::path::PathBuf>,
    host: &str,
    port: u16,
) -> Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| runner::Error::invalid(format!("cannot listen on {host}:{port}: {e}")))?;
    let address = listener.local_addr()?;
    eprintln!("roadsign serve: listening on http://{address} (ready once the model is warm)");
    let workers = settings.workers();
    let queue = settings.queue;
    let model_name = settings.model_name.clone();
    torch_nodes::set_torch_threads(settings.torch_threads);
    let drain = Duration::from_secs_f64(settings.drain_s.max(0.0));
    let state = Arc::new(AppState::new(settings, workers));

    // Start-up off the executor: a failure ends the process (a supervisor
    // restarts it), since a server that can never be ready serves nothing.
    let (started_tx, mut started_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let start_state = Arc::clone(&state);
    std::thread::Builder::new()
        .name("roadsign-startup".into())
        .spawn(move || {
            let started = Instant::now();
            let result = (|| -> Result<()> {
                let predictor = Arc::new(predictor::start(&config, model.as_deref())?);
                // Room for every request admitted, images (workers + queue)
                // and videos (one per worker): an admitted request is not
                // refused after its upload (unless jobs whose requests
                // timed out still wait for a worker).
                let pool = WorkerPool::new(workers, queue + workers)?;
                let identity = v2::ModelIdentity {
                    name: model_name.unwrap_or_else(|| predictor.model_name.clone()),
                    version: predictor.model_version.clone(),
                };
                let engine = Engine {
                    predictor,
                    pool,
                    identity,
                };
                warm_up(&engine)?;
                let _ = start_state.engine.set(engine);
                eprintln!(
                    "roadsign serve: ready in {:.1} s ({workers} worker(s), queue {queue})",
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            })();
            let _ = started_tx.send(result);
        })?;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut startup_done = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors, say: back off, don't spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                let write_limit = Duration::from_secs_f64(state.settings.write_timeout_s);
                let service = service_fn(move |request| handle(Arc::clone(&state), request));
                let stream = write_timeout::WriteTimeout::new(stream, write_limit);
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            started = &mut started_rx, if !startup_done => {
                startup_done = true;
                match started {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e.context("the predict pipeline did not start")),
                    Err(_) => anyhow::bail!("the start-up thread stopped"),
                }
            }
            _ = &mut shutdown => break,
        }
    }
    state.draining.store(true, Ordering::SeqCst);
    drop(listener);
    eprintln!(
        "roadsign serve: shutting down, draining requests for up to {} s",
        drain.as_secs_f64()
    );
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => eprintln!("roadsign serve: drained, bye"),
        Err(_) => {
            eprintln!("roadsign serve: drain time over, stopping video jobs and closing the remaining connections");
            // Jobs stop at their next frame: a second or two at most.
            let state = Arc::clone(&state);
            let _ = tokio::task::spawn_blocking(move || state.cancel_jobs(Duration::from_secs(3)))
                .await;
        }
    }
    Ok(())
}
