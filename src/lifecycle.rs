//! How every service runs, the same way for all three: `start(config, listener)` does everything
//! that can fail before serving (configuration, database and migrations, URLs, metrics listener),
//! spawns the serving task and returns a [`Handle`]; by then the listener is being served. The
//! handle stops the service gracefully ([`Handle::shutdown`], each service's own drain phases) or
//! reports an end nobody asked for ([`Handle::ended`]), which a main waits for alongside the
//! process signal ([`Handle::run_until`]).

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a service's `start` returns: its start-up, boxed in the service's own crate.
///
/// Not an `async fn`: the body of a non-generic `async fn` is compiled again in every crate that
/// awaits it, with everything it instantiates. Each binary, test and bench compiled the services'
/// whole start-up again, tonic's server path once per gRPC method included (`iafactory-local`'s
/// 195-line `main.rs` came to 1.1 million lines of LLVM IR). A `dyn Future` made in the service's
/// crate is compiled there once; callers only poll it through its vtable.
pub type Starting<H, E> = Pin<Box<dyn Future<Output = Result<H, E>> + Send>>;

/// The serving task ended without an answer of its own (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the service task ended abnormally: {0}")]
pub struct TaskFailed(String);

/// Resolves when the owner of the [`Handle`] asks for a stop, or drops the handle: the serving
/// task awaits it as its shutdown signal.
#[derive(Debug)]
pub struct Stop(oneshot::Receiver<()>);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A dropped sender (the handle is gone) is a stop request too.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A running service. `E` is the service's error; `S` what it exposes while it runs (reached
/// through `Deref`, e.g. llm-gateway's usage flush), `()` for most.
///
/// Dropping the handle asks for the same graceful stop as [`Handle::shutdown`] without waiting
/// for it: keep the handle for as long as the service should run.
#[derive(Debug)]
pub struct Handle<E, S = ()> {
    /// The address the service answers on.
    pub addr: SocketAddr,
    /// Where Prometheus `/metrics` answers when it has a listener of its own (`None`: no such
    /// listener; gateway-rest answers `/metrics` on `addr`).
    pub metrics_addr: Option<SocketAddr>,
    service: S,
    stop: Option<oneshot::Sender<()>>,
    /// `None` once [`Handle::ended`] has given the task's outcome.
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E, S> Handle<E, S>
where
    E: From<TaskFailed> + Send + 'static,
{
    /// Spawns `serve`, which runs the service until the [`Stop`] it is given resolves, then
    /// drains and returns. Called by each service's `start` once everything is ready.
    pub fn spawn<F>(addr: SocketAddr, service: S, serve: impl FnOnce(Stop) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (stop, requested) = oneshot::channel();
        Handle {
            addr,
            metrics_addr: None,
            service,
            stop: Some(stop),
            task: Some(tokio::spawn(serve(Stop(requested)))),
        }
    }

    /// Records the metrics listener's address (see [`Handle::metrics_addr`]).
    #[must_use]
    pub fn with_metrics_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.metrics_addr = addr;
        self
    }

    /// Graceful stop: the service stops accepting, lets work in flight finish, runs its own
    /// closing phases and returns how serving went. After [`Handle::ended`] resolved, `Ok(())`
    /// (that outcome was already given).
    pub async fn shutdown(mut self) -> Result<(), E> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => joined(task.await),
            None => Ok(()),
        }
    }

    /// Resolves when the service stops on its own (a serving error, a panic) — never for a stop
    /// asked through this handle, which [`Handle::shutdown`] awaits. Cancel-safe, for a
    /// `select!` with the process signal; resolves once.
    pub async fn ended(&mut self) -> Result<(), E> {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = task.await;
        self.task = None;
        joined(outcome)
    }

    /// Serves until `signal` resolves, then stops gracefully; or returns early with the outcome
    /// of an unexpected end (what a main does with the process signal).
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), E> {
        let early = tokio::select! {
            () = signal => None,
            outcome = self.ended() => Some(outcome),
        };
        match early {
            Some(outcome) => outcome,
            None => self.shutdown().await,
        }
    }
}

impl<E, S> Deref for Handle<E, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.service
    }
}

fn joined<E: From<TaskFailed>>(
    outcome: Result<Result<(), E>, tokio::task::JoinError>,
) -> Result<(), E> {
    outcome.unwrap_or_else(|e| Err(TaskFailed(e.to_string()).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failed {
        Serving,
        Task,
    }

    impl From<TaskFailed> for Failed {
        fn from(_: TaskFailed) -> Self {
            Failed::Task
        }
    }

    fn addr() -> SocketAddr {
        ([127, 0, 0, 1], 9).into()
    }

    #[tokio::test]
    async fn shutdown_runs_the_closing_phases_and_returns_their_outcome() {
        let (closed_tx, closed_rx) = oneshot::channel();
        let handle = Handle::<Failed>::spawn(addr(), (), |stop| async move {
            stop.await;
            let _ = closed_tx.send("drained");
            Ok(())
        });
        assert_eq!(handle.shutdown().await, Ok(()));
        assert_eq!(closed_rx.await, Ok("drained"));
    }

    #[tokio::test]
    async fn dropping_the_handle_asks_for_a_stop() {
        let (closed_tx, closed_rx) = oneshot::channel();
        let handle = Handle::<Failed>::spawn(addr(), (), |stop| async move {
            stop.await;
            let _ = closed_tx.send(());
            Ok(())
        });
        drop(handle);
        assert_eq!(closed_rx.await, Ok(()));
    }

    #[tokio::test]
    async fn an_end_on_its_own_is_reported_by_ended_and_run_until() {
        let mut handle =
            Handle::<Failed>::spawn(addr(), (), |_stop| async { Err(Failed::Serving) });
        assert_eq!(handle.ended().await, Err(Failed::Serving));
        assert_eq!(handle.shutdown().await, Ok(()));

        let handle = Handle::<Failed>::spawn(addr(), (), |_stop| async { Err(Failed::Serving) });
        let signal = std::future::pending();
        assert_eq!(handle.run_until(signal).await, Err(Failed::Serving));
    }

    #[tokio::test]
    async fn a_panic_in_the_task_is_an_error_not_a_panic_of_the_owner() {
        let handle = Handle::<Failed>::spawn(addr(), (), |_stop| async { panic!("boom") });
        assert_eq!(handle.shutdown().await, Err(Failed::Task));
    }

    #[tokio::test]
    async fn run_until_the_signal_stops_gracefully() {
        let handle = Handle::<Failed, &str>::spawn(addr(), "probe", |stop| async move {
            stop.await;
            Ok(())
        });
        assert_eq!(*handle, "probe");
        assert_eq!(handle.run_until(async {}).await, Ok(()));
    }
}
