//! Deterministic coins: the same seed makes a run flip the same coins again.

/// A deterministic coin for `(seed, what, n)`: the same run flips the same coins.
pub(crate) fn chance(seed: u64, what: &str, n: u64) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed ^ fnv(what) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.f64()
}

/// The number of order `order` (`order-7`, or with a drive's prefix `drive-x-order-7`), which
/// picks its coins; 0 for an id of another form.
pub(crate) fn order_number(order: &str) -> u64 {
    order.rsplit("order-").next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The number at the end of an id (`pet-7`, `customer-3`, or with a drive's prefix
/// `drive-x-pet-7`); 0 for an id of another form.
pub(crate) fn id_number(id: &str) -> u64 {
    id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The FNV-1a hash of `s`, so that each kind of coin has a sequence of its own.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
