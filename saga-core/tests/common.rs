//! A small ledger domain the engine tests run: deposits change an account and tell an auditor.

use saga_core::{ActionError, Context, Service};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Deposit {
    pub(crate) n: u32,
    pub(crate) account: String,
}
saga_core::message!(Deposit = "test.deposit");

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Deposited {
    pub(crate) n: u32,
}
saga_core::message!(Deposited = "test.deposited");

/// An account: the deposits applied to it, in order.
#[derive(Serialize, Deserialize, Default, Debug)]
pub(crate) struct Account {
    pub(crate) deposits: Vec<u32>,
}

pub(crate) fn deposit(n: u32) -> Deposit {
    Deposit { n, account: format!("acct-{}", n % 4) }
}

/// The ledger applies deposits and announces them; `calls` counts handler runs.
pub(crate) fn ledger(calls: Arc<AtomicUsize>) -> Service {
    Service::new("ledger").on("ledger", move |ctx: &mut Context, d: Deposit| {
        calls.fetch_add(1, Ordering::SeqCst);
        let mut account: Account = ctx.load(&d.account)?.unwrap_or_default();
        account.deposits.push(d.n);
        ctx.save(&d.account, &account)?;
        ctx.send("audit", &Deposited { n: d.n })?;
        Ok::<(), ActionError>(())
    })
}

/// The auditor counts each announcement it receives.
pub(crate) fn auditor() -> Service {
    Service::new("auditor").on("audit", |ctx: &mut Context, d: Deposited| {
        let key = format!("seen-{}", d.n);
        let seen: u32 = ctx.load(&key)?.unwrap_or(0);
        ctx.save(&key, &(seen + 1))?;
        Ok(())
    })
}

/// Every deposit number applied to any account, sorted.
pub(crate) fn applied(store: &dyn saga_core::Store) -> Vec<u32> {
    let mut all = Vec::new();
    for a in 0..4 {
        if let Some(r) = store.record("ledger", &format!("acct-{a}")).unwrap() {
            let account: Account = serde_json::from_slice(&r.data).unwrap();
            all.extend(account.deposits);
        }
    }
    all.sort_unstable();
    all
}

/// How many times the auditor counted deposit `n`.
pub(crate) fn audited(store: &dyn saga_core::Store, n: u32) -> u32 {
    store
        .record("auditor", &format!("seen-{n}"))
        .unwrap()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .unwrap_or(0)
}

pub(crate) use saga_core::testkit::eventually;

/// The status of process `id`.
pub(crate) fn status(store: &dyn saga_core::Store, id: &str) -> Option<saga_core::Status> {
    store.record(saga_core::store::PROCESS_SPACE, id).unwrap().and_then(|r| r.process.map(|p| p.status))
}

/// A store in redb's in-memory backend and a runtime builder over it and a fresh in-process
/// transport.
pub(crate) fn in_memory() -> (Arc<saga_core::RedbStore>, saga_core::RuntimeBuilder) {
    let store = Arc::new(saga_core::RedbStore::in_memory().unwrap());
    let builder =
        saga_core::Runtime::builder_shared(store.clone(), Arc::new(saga_core::InProcessTransport::new()));
    (store, builder)
}
