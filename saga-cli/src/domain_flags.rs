//! The registry's domains as subcommands of `run`, `service` and `drive`, each domain's knobs
//! as its flags: the CLI names no domain, so a new one needs no change here.

use crate::cli::{ApartArgs, CommonRun, DriverArgs, SimulateArgs};
use clap::builder::{TypedValueParser as _, ValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, Subcommand, value_parser};
use saga_examples::{Domain, DomainKind, Knob, Knobs, Role, Setting, imp_summoning, registry};
use std::collections::{BTreeMap, BTreeSet};

/// The arguments a domain's subcommand takes before its own knobs, and the role the domain
/// plays there.
pub(crate) trait RoleArgs: Args + FromArgMatches {
    /// Which of a domain's knobs the subcommand offers.
    const ROLE: Role;
}

impl RoleArgs for CommonRun {
    const ROLE: Role = Role::Run;
}

impl RoleArgs for ApartArgs {
    const ROLE: Role = Role::Service;
}

impl RoleArgs for DriverArgs {
    const ROLE: Role = Role::Drive;
}

impl RoleArgs for SimulateArgs {
    const ROLE: Role = Role::Run;
}

/// The domain a command line chose, with the options its flags gave, and the arguments of the
/// role it plays.
#[derive(Debug)]
pub(crate) struct Chosen<A> {
    pub(crate) args: A,
    pub(crate) domain: Box<dyn Domain>,
    /// The value of each of the domain's flags as the command line gave it (or its default),
    /// as text, by flag.
    pub(crate) flags: BTreeMap<String, String>,
    /// The flags the command line gave (not left to their defaults), the role's own too.
    pub(crate) given: BTreeSet<String>,
}

impl<A: RoleArgs> Subcommand for Chosen<A> {
    fn augment_subcommands(cmd: Command) -> Command {
        registry::all().iter().fold(cmd, |cmd, kind| {
            // The role's arguments first: their type's doc would otherwise stand for the domain's.
            let sub = A::augment_args(Command::new(kind.name)).about(summary(kind.about(A::ROLE)));
            cmd.subcommand(knob_args(sub, kind, A::ROLE))
        })
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        registry::named(name).is_some()
    }
}

impl<A: RoleArgs> FromArgMatches for Chosen<A> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, matches)) = matches.subcommand() else {
            return Err(clap::Error::raw(clap::error::ErrorKind::MissingSubcommand, "a domain is missing"));
        };
        let Some(kind) = registry::named(name) else {
            let unknown = format!("no domain {name:?}");
            return Err(clap::Error::raw(clap::error::ErrorKind::InvalidSubcommand, unknown));
        };
        let args = A::from_arg_matches(matches)?;
        let knobs = knobs_of(kind, A::ROLE, matches);
        let flags = knobs.values().map(|(flag, value)| (flag.to_owned(), value)).collect();
        let given = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.as_str().to_owned())
            .collect();
        Ok(Chosen { args, domain: (kind.configure)(&knobs), flags, given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The knobs of imp-summoning's services (`--failure-rate`, `--summoners`, `--recovery-ms`),
/// which `bench sagas` takes.
#[derive(Debug, Clone)]
pub(crate) struct ImpKnobs(pub(crate) Knobs);

impl Args for ImpKnobs {
    fn augment_args(cmd: Command) -> Command {
        knob_args(cmd, &imp_summoning::KIND, Role::Service)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ImpKnobs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ImpKnobs(knobs_of(&imp_summoning::KIND, Role::Service, matches)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// `cmd` with a flag for each knob `kind` offers where it plays `role`.
fn knob_args(cmd: Command, kind: &DomainKind, role: Role) -> Command {
    kind.knobs(role).fold(cmd, |cmd, knob| cmd.arg(flag(knob)))
}

/// The values `matches` gave the knobs `kind` offers where it plays `role`.
fn knobs_of(kind: &DomainKind, role: Role, matches: &ArgMatches) -> Knobs {
    let mut knobs = Knobs::default();
    for knob in kind.knobs(role) {
        match knob.setting {
            Setting::Count { .. } => {
                if let Some(n) = matches.get_one::<u64>(knob.flag) {
                    knobs.set_count(knob.flag, *n);
                }
            }
            Setting::Number { .. } => {
                if let Some(x) = matches.get_one::<f64>(knob.flag) {
                    knobs.set_number(knob.flag, *x);
                }
            }
            Setting::Switch => {
                knobs.set_switch(knob.flag, matches.get_flag(knob.flag));
            }
        }
    }
    knobs
}

/// A knob's flag: `--{flag} <FLAG>` with its default, its range checked as it is parsed.
fn flag(knob: &Knob) -> Arg {
    let arg = Arg::new(knob.flag).long(knob.flag).help(summary(knob.help));
    let value_name = knob.flag.replace('-', "_").to_uppercase();
    match knob.setting {
        Setting::Count { default, min, max } => {
            let arg = arg.value_name(value_name).action(ArgAction::Set).value_parser(whole_number(min, max));
            match default {
                Some(n) => arg.default_value(n.to_string()),
                None => arg.required(true),
            }
        }
        Setting::Number { default, min, max, unit } => arg
            .value_name(value_name)
            .action(ArgAction::Set)
            .default_value(default.to_string())
            .value_parser(move |s: &str| number(s, min, max, unit)),
        Setting::Switch => arg.action(ArgAction::SetTrue),
    }
}

/// Parses a whole number from `min` to `max`; a knob that fits 32 bits says so in its errors.
fn whole_number(min: u64, max: u64) -> ValueParser {
    match (min, max) {
        (min, max) if max == u64::from(u32::MAX) => {
            value_parser!(u32).range(i64::try_from(min).unwrap_or(i64::MAX)..).map(u64::from).into()
        }
        (0, u64::MAX) => value_parser!(u64).into(),
        (min, u64::MAX) => value_parser!(u64).range(min..).into(),
        (min, max) => value_parser!(u64).range(min..=max).into(),
    }
}

/// Parses a number from `min` to `max`, counting `unit` (if any).
fn number(s: &str, min: f64, max: f64, unit: Option<&str>) -> Result<f64, String> {
    let of_unit = unit.map(|u| format!(" of {u}")).unwrap_or_default();
    let value: f64 = s.parse().map_err(|_| format!("{s:?} is not a number{of_unit}"))?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        let in_unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
        Err(format!("{value} is not between {min} and {max}{in_unit}"))
    }
}

/// A sentence as clap shows one line of help: without its closing period.
fn summary(sentence: &'static str) -> &'static str {
    sentence.strip_suffix('.').unwrap_or(sentence)
}
