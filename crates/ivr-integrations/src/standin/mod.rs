//! Local stand-in servers for the systems a call ends in: used by the tests,
//! `ivr simulate` and `make run`. Each is an axum server on a listener the
//! caller binds (port 0 in tests), with in-memory state and a handle to
//! inspect it and to stop the server.

pub mod frontdesk;
pub mod puzzel;

/// Stops a stand-in server when sent or dropped.
#[derive(Debug)]
pub(crate) struct Shutdown(Option<tokio::sync::oneshot::Sender<()>>);

impl Shutdown {
    pub(crate) fn new() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self(Some(tx)), rx)
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
