//! Process managers: one live instance per correlation id, failures wait for an operator.

use crate::common::{eventually, in_memory, status};
use saga_core::process::ProcessManager;
use saga_core::store::{Class, HistoryEvent};
use saga_core::{Status, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct VoidingRequested {
    document: String,
}
saga_core::message!(VoidingRequested = "billing.voiding-requested");

#[derive(Serialize, Deserialize, Clone)]
struct MarkingFinished {
    document: String,
    succeeded: bool,
}
saga_core::message!(MarkingFinished = "reports.marking-finished");

#[derive(Serialize, Deserialize)]
struct MarkAsVoided {
    document: String,
}
saga_core::message!(MarkAsVoided = "reports.mark-as-voided");

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Voiding {
    Requested,
    Voided,
}

fn voiding() -> ProcessManager<Voiding> {
    ProcessManager::new("voiding")
        .start_on(
            "billing",
            |e: &VoidingRequested| e.document.clone(),
            |e, p| {
                p.send("reports", &MarkAsVoided { document: e.document.clone() })?;
                p.set_state("requested");
                Ok(Voiding::Requested)
            },
        )
        .on(
            "reports.events",
            |e: &MarkingFinished| e.document.clone(),
            |state, e, p| {
                if e.succeeded {
                    *state = Voiding::Voided;
                    p.complete();
                } else {
                    p.fail("the report was already published");
                }
                Ok(())
            },
        )
}

/// Receives the process manager's commands (and answers nothing by itself).
fn reports() -> saga_core::Service {
    saga_core::Service::new("reports").on("reports", |_ctx, _m: MarkAsVoided| Ok(()))
}

fn instances(store: &dyn Store) -> Vec<(String, Status)> {
    store
        .processes(None)
        .unwrap()
        .into_iter()
        .filter(|p| p.meta().is_some_and(|m| m.class == Class::Process))
        .map(|p| (p.id.clone(), p.meta().unwrap().status))
        .collect()
}

#[tokio::test]
async fn concurrent_start_events_for_one_document_create_exactly_one_instance() {
    let (store, builder) = in_memory();
    let runtime = builder.register(voiding()).register(reports()).start().await.unwrap();
    // Twenty requests under twenty different keys: handled concurrently, racing for the slot.
    for n in 0..20 {
        runtime
            .send("billing", &format!("request-{n}"), &VoidingRequested { document: "doc-1".into() })
            .await
            .unwrap();
    }
    runtime.wait_idle().await.unwrap();
    assert_eq!(instances(store.as_ref()), [("voiding/doc-1/1".to_owned(), Status::Running)]);
    let ignored = store
        .history("voiding/doc-1/1")
        .unwrap()
        .into_iter()
        .filter(|h| matches!(h.event, HistoryEvent::Ignored { .. }))
        .count();
    assert_eq!(ignored, 19, "every other request is recorded on the live instance");
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_instance_holds_its_document_until_acknowledged() {
    let (store, builder) = in_memory();
    let runtime = builder.register(voiding()).register(reports()).start().await.unwrap();
    let request = VoidingRequested { document: "doc-2".into() };
    runtime.send("billing", "doc-2", &request).await.unwrap();
    runtime.wait_idle().await.unwrap();
    let first = "voiding/doc-2/1";
    runtime
        .send("reports.events", "doc-2", &MarkingFinished { document: "doc-2".into(), succeeded: false })
        .await
        .unwrap();
    eventually("the instance to fail", || status(store.as_ref(), first) == Some(Status::Failed)).await;

    // While it waits for the operator, no new instance starts for the document.
    runtime.send("billing", "doc-2", &request).await.unwrap();
    runtime.wait_idle().await.unwrap();
    assert_eq!(instances(store.as_ref()).len(), 1);

    runtime.acknowledge(first).await.unwrap();
    eventually("the acknowledgement", || status(store.as_ref(), first) == Some(Status::Acknowledged)).await;
    runtime.send("billing", "doc-2", &request).await.unwrap();
    eventually("a new instance", || instances(store.as_ref()).len() == 2).await;
    assert_eq!(status(store.as_ref(), "voiding/doc-2/2"), Some(Status::Running));
    runtime
        .send("reports.events", "doc-2", &MarkingFinished { document: "doc-2".into(), succeeded: true })
        .await
        .unwrap();
    eventually("the voiding to complete", || {
        status(store.as_ref(), "voiding/doc-2/2") == Some(Status::Completed)
    })
    .await;
    runtime.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_process_managers_start_failure_and_acknowledgement_are_announced_in_order() {
    let (store, builder) = in_memory();
    let runtime = builder
        .announce("processes")
        .register(voiding())
        .register(reports())
        .register(watcher())
        .start()
        .await
        .unwrap();
    runtime.send("billing", "doc-3", &VoidingRequested { document: "doc-3".into() }).await.unwrap();
    runtime.wait_idle().await.unwrap();
    let failed = MarkingFinished { document: "doc-3".into(), succeeded: false };
    runtime.send("reports.events", "doc-3", &failed).await.unwrap();
    let id = "voiding/doc-3/1";
    eventually("the instance to fail", || status(store.as_ref(), id) == Some(Status::Failed)).await;
    runtime.acknowledge(id).await.unwrap();
    let seen = || -> Vec<String> {
        store
            .record("watcher", id)
            .unwrap()
            .map(|r| serde_json::from_slice(&r.data).unwrap())
            .unwrap_or_default()
    };
    eventually("three announcements", || seen().len() == 3).await;
    assert_eq!(seen(), ["1:->running", "2:running>failed", "3:failed>acknowledged"]);
    runtime.shutdown().await.unwrap();
}

/// Keeps every announced change of each process, in the order it heard them.
fn watcher() -> saga_core::Service {
    saga_core::Service::new("watcher").on("processes", |ctx, c: saga_core::ProcessChanged| {
        assert_eq!((c.class, c.kind.as_str()), (Class::Process, "voiding"));
        let mut seen: Vec<String> = ctx.load(&c.process)?.unwrap_or_default();
        seen.push(format!("{}:{}>{}", c.change, c.from.map_or("-".to_owned(), |s| s.to_string()), c.to));
        ctx.save(&c.process, &seen)?;
        Ok(())
    })
}
