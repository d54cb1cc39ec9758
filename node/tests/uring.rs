//! The engine on the daemon's runtime: tokio-uring runs a tokio current-thread runtime with a
//! `LocalSet` inside, and every engine API must work there.

use skr8tr_node::{Engine, Event, KillOutcome, Termination};

use crate::util::*;

#[test]
fn the_engine_runs_on_tokio_uring() {
    let rt = match tokio_uring::Runtime::new(&tokio_uring::builder()) {
        Ok(rt) => rt,
        Err(e) => {
            // io_uring refused (kernel setting, seccomp): the daemon then falls back to a plain
            // tokio current-thread runtime, which every other test here uses.
            eprintln!("io_uring unavailable ({e}); skipping");
            return;
        }
    };
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (engine, mut events, _) = Engine::start(config(dir.path())).await.unwrap();
        engine
            .launch(rid("u1"), 1, app("u", "/bin/true", &[]))
            .await
            .unwrap();
        let termination = bounded(async {
            loop {
                if let Some(Event::Exited { termination, .. }) = events.recv().await {
                    return termination;
                }
            }
        })
        .await;
        assert_eq!(termination, Termination::Code(0));
        engine
            .launch(rid("u2"), 1, app("u", "/bin/sleep", &["30"]))
            .await
            .unwrap();
        let killer = tokio_uring::spawn({
            let engine = engine.clone();
            async move { engine.kill(&rid("u2")).await }
        });
        drop(events); // releases the Stopping gate
        assert_eq!(bounded(killer).await.unwrap(), KillOutcome::Stopped);
        let out = engine
            .exec(&rid("u2"), "true", std::time::Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(out.to_string().contains("ended"));
        engine.shutdown().await;
    });
}

/// The glue may move these futures into `tokio::spawn`: they must be `Send`. Checked at
/// compile time only.
#[allow(dead_code)]
fn engine_futures_are_send(engine: &Engine) {
    fn send<T: Send + 'static>(_: T) {}
    fn send_ref<T: Send>(_: T) {}
    send(engine.clone());
    send_ref(engine.launch(rid("x"), 1, app("x", "/bin/true", &[])));
    send_ref(engine.kill(&rid("x")));
    send_ref(engine.exec(&rid("x"), "true", std::time::Duration::from_secs(1)));
    send_ref(engine.clone().shutdown());
    send_ref(engine.clone().detach());
}
