//! [`ProcessView`]: a process manager's instance as stored, its state read as the user's type.

use crate::error::{Error, Result};
use crate::runtime::RuntimeHandle;
use crate::store::{Class, PROCESS_SPACE, Status, Store};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A process-manager instance as last committed: its correlation id, its state as type `S`,
/// its status and, if it failed, why.
///
/// ```
/// use saga_core::process::{ProcessManager, ProcessView};
/// use saga_core::{InProcessTransport, Message, RedbStore, Runtime, Status};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)] struct Opened { door: String }
/// saga_core::message!(Opened = "doors.opened");
/// #[derive(Serialize, Deserialize, Debug, PartialEq)] enum Door { Open, Closed }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let doors = ProcessManager::<Door>::new("door")
///     .start_on("doors", |e: &Opened| e.door.clone(), |_, _| Ok(Door::Open));
/// let runtime = Runtime::builder(RedbStore::in_memory()?, InProcessTransport::new()).register(doors).start().await?;
/// runtime.send("doors", "front", &Opened { door: "front".into() }).await?;
/// runtime.wait_idle().await?;
/// let front = runtime.process::<Door>("door/front/1")?.expect("it began");
/// assert_eq!(front.state(), &Door::Open);
/// assert_eq!((front.correlation_id(), front.status()), ("front", Status::Running));
/// # runtime.shutdown().await?;
/// # Ok::<_, saga_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessView<S> {
    id: String,
    correlation_id: String,
    state: S,
    status: Status,
    failure: Option<String>,
}

/// What an instance stores, as read back.
#[derive(Deserialize)]
struct Stored<S> {
    correlation_id: String,
    state: S,
    failure: Option<String>,
}

impl<S: DeserializeOwned> ProcessView<S> {
    /// Reads process-manager instance `id` from `store`, its state as `S`; `None` if there is
    /// no such instance. A saga's id, or a state that is not an `S`, is an error naming it.
    pub fn read(store: &dyn Store, id: &str) -> Result<Option<ProcessView<S>>> {
        let Some(record) = store.record(PROCESS_SPACE, id)? else { return Ok(None) };
        let meta = record.process.ok_or_else(|| Error::UnknownProcess { id: id.to_owned() })?;
        if meta.class != Class::Process {
            return Err(Error::UnknownProcess { id: id.to_owned() });
        }
        let stored: Stored<S> = serde_json::from_slice(&record.data)
            .map_err(|e| Error::codec(format!("decoding the state of process {id}"), e))?;
        Ok(Some(ProcessView {
            id: id.to_owned(),
            correlation_id: stored.correlation_id,
            state: stored.state,
            status: meta.status,
            failure: stored.failure,
        }))
    }
}

impl<S> ProcessView<S> {
    /// The instance's process id (`{name}/{correlation id}/{generation}`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id the instance's events are correlated by.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// Its state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Where it stands.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
}

impl RuntimeHandle {
    /// Process-manager instance `id` of this runtime, its state read as `S` (see
    /// [`ProcessView`]); `None` if there is no such instance.
    pub fn process<S: DeserializeOwned>(&self, id: &str) -> Result<Option<ProcessView<S>>> {
        ProcessView::read(self.store().as_ref(), id)
    }
}
