//! [`Knob`]: a setting of a domain that a command line offers as a flag, and [`Knobs`], the
//! values given.

use std::collections::BTreeMap;

/// The part a process plays in running a domain, each with a `saga-cli` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `saga-cli run`: every service, the scenario and the checks in one process.
    Run,
    /// `saga-cli service`: one service in a process of its own.
    Service,
    /// `saga-cli drive`: the scenario, driven from a process of its own.
    Drive,
}

/// What a knob takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// A whole number from `min` to `max`: `default` when not given, required when there is none.
    Count {
        /// The value when the flag is not given; `None`: the flag is required.
        default: Option<u64>,
        /// The smallest value taken.
        min: u64,
        /// The largest value taken.
        max: u64,
    },
    /// A number from `min` to `max`, `default` when not given.
    Number {
        /// The value when the flag is not given.
        default: f64,
        /// The smallest value taken.
        min: f64,
        /// The largest value taken.
        max: f64,
        /// What it counts (`"seconds"`), if anything.
        unit: Option<&'static str>,
    },
    /// On when given.
    Switch,
}

/// A setting of a domain that `saga-cli` offers as a flag (`--failure-rate 0.3`), in the
/// commands of the [`Role`]s it matters to.
///
/// ```
/// use saga_examples::{Knob, Role};
///
/// const SUMMONERS: Knob = Knob::count("summoners", "Summoners on staff.", 3)
///     .at_least(1)
///     .at_most(u32::MAX as u64)
///     .offered(&[Role::Run, Role::Service]);
/// assert_eq!(SUMMONERS.flag, "summoners");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knob {
    /// The flag's name, without its dashes.
    pub flag: &'static str,
    /// What it sets, one sentence (`--help`).
    pub help: &'static str,
    /// What it takes.
    pub setting: Setting,
    /// Where it is offered.
    pub roles: &'static [Role],
}

impl Knob {
    /// A whole number, `default` when not given; offered to `saga-cli run`.
    pub const fn count(flag: &'static str, help: &'static str, default: u64) -> Knob {
        let setting = Setting::Count { default: Some(default), min: 0, max: u64::MAX };
        Knob { flag, help, setting, roles: &[Role::Run] }
    }

    /// A whole number that must be given; offered to `saga-cli run`.
    pub const fn required(flag: &'static str, help: &'static str) -> Knob {
        let setting = Setting::Count { default: None, min: 0, max: u64::MAX };
        Knob { flag, help, setting, roles: &[Role::Run] }
    }

    /// A share from 0 to 1, `default` when not given; offered to `saga-cli run`.
    pub const fn share(flag: &'static str, help: &'static str, default: f64) -> Knob {
        let setting = Setting::Number { default, min: 0.0, max: 1.0, unit: None };
        Knob { flag, help, setting, roles: &[Role::Run] }
    }

    /// Seconds from `min` to `max`, `default` when not given; offered to `saga-cli run`.
    pub const fn seconds(flag: &'static str, help: &'static str, default: f64, min: f64, max: f64) -> Knob {
        let setting = Setting::Number { default, min, max, unit: Some("seconds") };
        Knob { flag, help, setting, roles: &[Role::Run] }
    }

    /// Off unless given; offered to `saga-cli run`.
    pub const fn switch(flag: &'static str, help: &'static str) -> Knob {
        Knob { flag, help, setting: Setting::Switch, roles: &[Role::Run] }
    }

    /// A whole number takes nothing below `min`.
    pub const fn at_least(mut self, min: u64) -> Knob {
        if let Setting::Count { default, max, .. } = self.setting {
            self.setting = Setting::Count { default, min, max };
        }
        self
    }

    /// A whole number takes nothing above `max`.
    pub const fn at_most(mut self, max: u64) -> Knob {
        if let Setting::Count { default, min, .. } = self.setting {
            self.setting = Setting::Count { default, min, max };
        }
        self
    }

    /// Offered where the domain plays one of `roles`.
    pub const fn offered(mut self, roles: &'static [Role]) -> Knob {
        self.roles = roles;
        self
    }
}

/// The values a command line gave a domain's knobs, by flag. A knob not given reads as
/// `None` (a switch as off), and the domain takes its default.
///
/// ```
/// use saga_examples::Knobs;
///
/// let mut knobs = Knobs::default();
/// knobs.set_count("orders", 40).set_number("failure-rate", 0.3);
/// assert_eq!((knobs.count("orders"), knobs.number("failure-rate")), (Some(40), Some(0.3)));
/// assert_eq!((knobs.count("summoners"), knobs.switch("slow")), (None, false));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knobs(BTreeMap<String, Given>);

/// One knob's value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Given {
    Count(u64),
    Number(f64),
    Switch(bool),
}

impl Knobs {
    /// Gives the whole-number knob `flag` the value `n`.
    pub fn set_count(&mut self, flag: &str, n: u64) -> &mut Self {
        self.0.insert(flag.to_owned(), Given::Count(n));
        self
    }

    /// Gives the number knob `flag` the value `x`.
    pub fn set_number(&mut self, flag: &str, x: f64) -> &mut Self {
        self.0.insert(flag.to_owned(), Given::Number(x));
        self
    }

    /// Turns the switch `flag` on or off.
    pub fn set_switch(&mut self, flag: &str, on: bool) -> &mut Self {
        self.0.insert(flag.to_owned(), Given::Switch(on));
        self
    }

    /// The whole number given for `flag`.
    pub fn count(&self, flag: &str) -> Option<u64> {
        match self.0.get(flag) {
            Some(Given::Count(n)) => Some(*n),
            _ => None,
        }
    }

    /// The number given for `flag`.
    pub fn number(&self, flag: &str) -> Option<f64> {
        match self.0.get(flag) {
            Some(Given::Number(x)) => Some(*x),
            _ => None,
        }
    }

    /// Whether the switch `flag` is on.
    pub fn switch(&self, flag: &str) -> bool {
        matches!(self.0.get(flag), Some(Given::Switch(true)))
    }

    /// Each knob given and its value as a command line writes it (a switch as `on` or `off`),
    /// by flag.
    ///
    /// ```
    /// use saga_examples::Knobs;
    ///
    /// let mut knobs = Knobs::default();
    /// knobs.set_count("orders", 40).set_number("failure-rate", 0.3).set_switch("slow", false);
    /// let values: Vec<(&str, String)> = knobs.values().collect();
    /// assert_eq!(values, [("failure-rate", "0.3".into()), ("orders", "40".into()), ("slow", "off".into())]);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = (&str, String)> {
        self.0.iter().map(|(flag, given)| {
            let value = match given {
                Given::Count(n) => n.to_string(),
                Given::Number(x) => x.to_string(),
                Given::Switch(on) => if *on { "on" } else { "off" }.to_owned(),
            };
            (flag.as_str(), value)
        })
    }
}
