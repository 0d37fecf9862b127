//! The workload the peers' benchmarks run, in this engine: an order's saga of three steps,
//! `reserve_funds` (refunded if a later step fails), `summon` (fails for good for one order in
//! ten) and `deliver`.

use saga_core::saga::{CompensationContext, Saga, Step, StepContext};
use saga_core::{ActionError, Service};
use serde::{Deserialize, Serialize};

/// The saga's name.
pub(crate) const SAGA: &str = "bench-order";
/// Where a remote `summon` sends its command.
const CIRCLE: &str = "bench.circle";

/// One order: the saga's input.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Order {
    pub(crate) number: u64,
    pub(crate) amount: u64,
}

impl Order {
    pub(crate) fn new(number: u64) -> Self {
        Order { number, amount: 10 + number % 90 }
    }

    /// The saga instance's key.
    pub(crate) fn key(&self) -> String {
        format!("order-{}", self.number)
    }
}

/// Summoning fails for every tenth order (10, 20, ...): exactly one in ten, the same orders in
/// every run and every engine.
pub(crate) fn summon_fails(order: u64) -> bool {
    order.is_multiple_of(10)
}

/// What `reserve_funds` records, and its compensation refunds.
#[derive(Serialize, Deserialize, Debug)]
struct Reservation {
    amount: u64,
}

#[derive(Serialize, Deserialize)]
struct Summon {
    order: u64,
}
saga_core::message!(Summon = "bench.summon");

#[derive(Serialize, Deserialize)]
struct Summoned {
    ok: bool,
}
saga_core::message!(Summoned = "bench.summoned");

/// The order's saga. With `remote`, `summon` is a command to the [`circle`] service and its
/// reply, instead of a local action.
pub(crate) fn saga(remote: bool) -> Saga<Order> {
    let reserve = Step::local("reserve_funds", |ctx: StepContext<Order>| async move {
        Ok::<_, ActionError>(Reservation { amount: ctx.input.amount })
    })
    .compensate(|refund: CompensationContext<Reservation>| async move {
        debug_assert!(refund.log.amount > 0);
        Ok(())
    });
    let summon = if remote {
        Step::remote(
            "summon",
            CIRCLE,
            |ctx: &StepContext<Order>| Summon { order: ctx.input.number },
            |reply: Summoned| summoned(reply.ok),
        )
    } else {
        Step::local(
            "summon",
            |ctx: StepContext<Order>| async move { summoned(!summon_fails(ctx.input.number)) },
        )
    };
    let deliver = Step::local("deliver", |_: StepContext<Order>| async move { Ok::<_, ActionError>(()) });
    Saga::new(SAGA).step(reserve).step(summon).step(deliver)
}

fn summoned(ok: bool) -> Result<(), ActionError> {
    if ok { Ok(()) } else { Err(ActionError::permanent("the summoning failed")) }
}

/// The service that answers a remote `summon`.
pub(crate) fn circle() -> Service {
    Service::new("circle").on(CIRCLE, |ctx, summon: Summon| {
        ctx.reply(&Summoned { ok: !summon_fails(summon.order) })?;
        Ok(())
    })
}
