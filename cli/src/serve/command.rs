//! `charrnn-fast serve`: loads the model, starts the engine loop on its own thread and the
//! HTTP server on a tokio runtime, and stops both on SIGTERM or Ctrl-C: no new connection or
//! request is taken, every stream gets a last event, and the process exits 0 within a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::serve::args::ServeArgs;
use crate::serve::engine_loop::{EngineLoop, Message};
use crate::serve::metrics::Metrics;
use crate::serve::request::Limits;
use crate::serve::routes::{router, AppState};
use crate::shared::model_source::ModelSource;
use crate::shared::output::errln;
use crate::shared::precision_arg::slow_bf16_note;

/// How long open connections get to end after a stop request.
const STOP_GRACE: Duration = Duration::from_millis(800);

pub fn run(args: ServeArgs) -> Result<()> {
    let source = ModelSource::locate(&args.model)?;
    let (model, vocab, loaded) = source.load("serve")?;
    let (model, vocab) = (Arc::new(model), Arc::new(vocab));
    let precision = args.precision.precision();
    if let Some(note) = slow_bf16_note(precision) {
        errln!("{note}");
    }
    let threads = crate::shared::threads::init_threads(args.threads)?;
    let metrics = Arc::new(Metrics::new());
    let capacity = args.max_streams as usize;
    let engine =
        EngineLoop::new(Arc::clone(&model), Arc::clone(&vocab), precision, capacity, threads, Arc::clone(&metrics));
    let ready = Arc::clone(&engine.ready);
    let (to_engine, messages) = std::sync::mpsc::channel();
    let model_id = args
        .model
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let state = Arc::new(AppState {
        engine: to_engine.clone(),
        metrics,
        model,
        vocab,
        precision,
        limits: Limits { max_length: args.max_length as usize, max_streams: capacity },
        max_queue: args.max_queue,
        api_key: args.api_key.clone(),
        ready,
        stopping: AtomicBool::new(false),
        model_id,
        facts: crate::info::facts_json(&args.model).unwrap_or(serde_json::Value::Null),
        next_id: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((args.host.as_str(), args.port)))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr().context("cannot read the address the server listens on")?;
    let engine_thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || engine.run(messages))
        .context("cannot start the engine thread")?;
    errln!("loaded {loaded}");
    errln!("listening on http://{address}");
    let result = runtime.block_on(serve(listener, Arc::clone(&state), to_engine));
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The engine loop ends at the shutdown message (or when every sender is gone).
    drop(state);
    let _ = engine_thread.join();
    result
}

/// Serves until a stop request, then ends every stream and waits at most [`STOP_GRACE`].
async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    to_engine: std::sync::mpsc::Sender<Message>,
) -> Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tokio::select! {
        finished = &mut server => {
            return finished.context("the server failed")?.context("the server failed");
        }
        () = stop_signal() => {}
    }
    errln!("stopping: ending every stream");
    state.stopping.store(true, Ordering::Relaxed);
    let _ = to_engine.send(Message::Shutdown);
    let _ = stop.send(());
    match tokio::time::timeout(STOP_GRACE, &mut server).await {
        Ok(finished) => finished.context("the server failed")?.context("the server failed")?,
        Err(_) => server.abort(),
    }
    Ok(())
}

/// SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
