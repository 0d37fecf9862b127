//! What every domain's run shares: its context, how it waits for its end, how it sends, where
//! it finds the services' records, and how it reports.

mod chance;
mod context;
mod invariant;
mod records;
mod retry;
mod sending;
mod summary;
mod waiting;

pub(crate) use chance::{chance, id_number, order_number};
pub use context::{Observer, Outcome, Progress, RunContext};
pub use invariant::Invariant;
pub use records::{Records, ServiceStores};
pub(crate) use records::{each_process, read};
pub(crate) use retry::patient;
pub(crate) use sending::{send_envelopes, send_in_batches};
pub use summary::{Summary, process_counts, saga_latency};
pub(crate) use waiting::{drive, finished_sagas, idle, settle};
