//! The seeded simulation: it injects every kind of fault, catches a service that applies a
//! retried command twice and replays it from its seed, gives the same run for the same seed,
//! and holds every process to ending.

use saga_core::saga::{Saga, Step, StepContext};
use saga_core::testkit::simulation::{Broken, FaultCounts, Faults, Report, Simulation};
use saga_core::{ActionError, Service, Status, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Charge {
    payment: String,
    account: String,
    amount: u64,
}
saga_core::message!(Charge = "bank.charge");

#[derive(Serialize, Deserialize)]
struct Charged {
    receipt: String,
}
saga_core::message!(Charged = "bank.charged");

#[derive(Serialize, Deserialize)]
struct Refund {
    payment: String,
    account: String,
    amount: u64,
}
saga_core::message!(Refund = "bank.refund");

const ACCOUNTS: u64 = 6;

/// A bank that charges and refunds each payment once, whatever number of commands ask (or, if
/// `careless`, once per command: a step that timed out sends its command again as a new
/// message, which the inbox does not recognise), and a saga that charges, then reserves, and
/// refunds the charge when the reservation is refused.
fn shop(careless: bool) -> Simulation {
    let mut simulation = Simulation::new(move |runtime| {
        let bank = Service::new("bank")
            .on("bank", move |ctx, c: Charge| {
                let done = format!("charged/{}", c.payment);
                if careless || ctx.load::<bool>(&done)?.is_none() {
                    let balance: i64 = ctx.load(&c.account)?.unwrap_or(0);
                    ctx.save(&c.account, &(balance - c.amount as i64))?;
                    ctx.save(&done, &true)?;
                }
                ctx.reply(&Charged { receipt: c.payment })?;
                Ok(())
            })
            .on("bank", |ctx, r: Refund| {
                let done = format!("refunded/{}", r.payment);
                if ctx.load::<bool>(&done)?.is_none() {
                    let balance: i64 = ctx.load(&r.account)?.unwrap_or(0);
                    ctx.save(&r.account, &(balance + r.amount as i64))?;
                    ctx.save(&done, &true)?;
                }
                Ok(())
            });
        let order = Saga::<u64>::new("order")
            .step(
                Step::remote(
                    "charge",
                    "bank",
                    |ctx: &StepContext<u64>| Charge {
                        payment: ctx.idempotency_key.clone(),
                        account: format!("acct-{}", ctx.input),
                        amount: 10,
                    },
                    |reply: Charged| Ok::<_, ActionError>(reply.receipt),
                )
                .timeout(Duration::from_secs(20))
                .compensate_with("bank", |receipt: &String| Refund {
                    payment: receipt.clone(),
                    account: format!(
                        "acct-{}",
                        receipt.trim_start_matches("order/").split('/').next().unwrap_or("")
                    ),
                    amount: 10,
                }),
            )
            .step(Step::local("reserve", |ctx: StepContext<u64>| async move {
                if ctx.input.is_multiple_of(3) { Err(ActionError::permanent("sold out")) } else { Ok(()) }
            }));
        runtime.register(bank).register(order)
    });
    for n in 0..ACCOUNTS {
        simulation = simulation.start_saga("order", &n.to_string(), &n);
    }
    simulation.invariant("each account pays for what it kept", |store: &dyn Store| {
        for n in 0..ACCOUNTS {
            let balance: i64 = match store.record("bank", &format!("acct-{n}"))? {
                Some(record) => serde_json::from_slice(&record.data).map_err(|e| e.to_string())?,
                None => 0,
            };
            let kept = if n.is_multiple_of(3) { 0 } else { -10 };
            if balance != kept {
                let detail = format!("acct-{n} has {balance}, expected {kept}");
                return Err(Broken::new(detail).at(format!("order/{n}")));
            }
        }
        Ok(())
    })
}

#[test]
fn every_kind_of_fault_is_injected_and_a_careful_shop_keeps_every_rule() {
    let summary = shop(false).run_seeds(0..40);
    if let Some(report) = summary.failed.first() {
        panic!("{report}");
    }
    let FaultCounts { lost, duplicated, reordered, delayed, crashes, transient_errors } = summary.faults;
    for (kind, count) in [
        ("lost", lost),
        ("duplicated", duplicated),
        ("reordered", reordered),
        ("delayed", delayed),
        ("crashes", crashes),
        ("transient errors", transient_errors),
    ] {
        assert!(count > 0, "no {kind} in 40 seeds: {:?}", summary.faults);
    }
}

#[test]
fn a_shop_that_charges_a_retried_command_twice_is_caught_and_its_seed_replays_it() {
    let careless = shop(true);
    let failed = (0..100).map(|seed| careless.run(seed)).find(|report| !report.passed());
    let failed = failed.expect("100 seeds without catching the double charge");
    let broken = &failed.broken[0];
    assert_eq!(broken.rule, "each account pays for what it kept", "{failed}");
    let shown = failed.to_string();
    assert!(shown.contains(&format!("replay: simulation.run({})", failed.seed)), "{shown}");
    let process = broken.process.as_ref().unwrap();
    assert!(shown.contains(&format!("history of {process}:")), "{shown}");
    assert!(
        shown.contains("step_timed_out"),
        "the history shows the timeout that sent the command again: {shown}"
    );
    let replayed = careless.run(failed.seed);
    assert_same(&failed, &replayed);
    // The careful bank passes under the same seed.
    assert!(shop(false).run(failed.seed).passed());
}

#[test]
fn the_same_seed_gives_the_same_faults_histories_and_verdict() {
    for seed in 0..20 {
        let (first, second) = (shop(false).run(seed), shop(false).run(seed));
        assert_same(&first, &second);
        assert!(!first.faults.is_empty() && first.histories.len() as u64 == ACCOUNTS);
    }
    assert_ne!(shop(false).run(3).faults, shop(false).run(17).faults, "two seeds, two runs");
}

fn assert_same(first: &Report, second: &Report) {
    assert_eq!(first.faults, second.faults, "seed {}: the fault logs differ", first.seed);
    assert_eq!(first.histories, second.histories, "seed {}: the histories differ", first.seed);
    assert_eq!(first.processes, second.processes);
    assert_eq!(first.broken, second.broken);
    assert_eq!((first.deliveries, first.elapsed_ms), (second.deliveries, second.elapsed_ms));
}

#[test]
fn without_faults_nothing_is_injected_and_the_shop_ends_as_it_should() {
    let report = shop(false).faults(Faults::none()).run(1);
    assert!(report.passed(), "{report}");
    assert_eq!(report.counts(), FaultCounts::default());
    let compensated = report.processes.values().filter(|s| **s == Status::Compensated).count();
    assert_eq!((report.processes.len(), compensated), (ACCOUNTS as usize, 2));
}

/// A saga that waits for a signal nobody sends never ends: the simulation says so when its
/// time is up, with the process's history.
#[test]
fn a_process_that_never_ends_breaks_the_rule_that_every_process_ends() {
    let waiting = Simulation::new(|runtime| {
        runtime
            .register(Saga::<u64>::new("adoption").step(Step::<u64, String>::signal("approve", "approved")))
    })
    .start_saga("adoption", "rex", &1u64)
    .time_limit(Duration::from_secs(3600))
    .replay_with(|seed| format!("cargo test -- never_ends # seed {seed}"));
    let report = waiting.run(5);
    assert_eq!(report.broken.len(), 1, "{report}");
    let broken = &report.broken[0];
    assert_eq!(
        (broken.rule.as_str(), broken.process.as_deref()),
        ("every process ends", Some("adoption/rex"))
    );
    assert!(broken.detail.starts_with("1 still running after 36"), "{}", broken.detail);
    assert!(report.to_string().contains("replay: cargo test -- never_ends # seed 5"));
    assert_eq!(report.processes["adoption/rex"], Status::Running);
}

#[derive(Serialize, Deserialize)]
struct Open;
saga_core::message!(Open = "ledger.open");

#[derive(Serialize, Deserialize)]
struct Close;
saga_core::message!(Close = "ledger.close");

/// What follows `settle` is sent only once what came before it was handled: a close sent in the
/// same moment as the open, under a key of its own, would be handed over first (ready messages
/// are looked at by content, and its key sorts first).
#[test]
fn what_follows_settle_waits_for_what_came_before() {
    let ledger = |runtime: saga_core::RuntimeBuilder| {
        runtime.register(
            Service::new("ledger").on("ledger", |ctx, _: Open| Ok(ctx.save("acct", &"open")?)).on(
                "ledger",
                |ctx, _: Close| {
                    let state: Option<String> = ctx.load("acct")?;
                    Ok(ctx.save(
                        "acct",
                        &if state.is_some() { "closed" } else { "closed before it was opened" },
                    )?)
                },
            ),
        )
    };
    let closed = |store: &dyn Store| -> Result<(), Broken> {
        let record = store.record("ledger", "acct")?.ok_or("no account")?;
        let state: String = serde_json::from_slice(&record.data).map_err(|e| e.to_string())?;
        if state == "closed" { Ok(()) } else { Err(Broken::new(state)) }
    };
    let settled = Simulation::new(ledger).send("ledger", "z", &Open).settle().send("ledger", "a", &Close);
    let settled = settled.faults(Faults::none()).invariant("closed after opening", closed);
    assert!(settled.run(1).passed(), "{}", settled.run(1));
    let at_once = Simulation::new(ledger).send("ledger", "z", &Open).send("ledger", "a", &Close);
    let report = at_once.faults(Faults::none()).invariant("closed after opening", closed).run(1);
    assert_eq!(report.broken.len(), 1, "without settle, the close overtakes the open: {report}");
}
