//! Writing to the terminal: stdout that tolerates a closed pipe, and progress on stderr.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Writes `text` and a newline to stdout; a reader that went away (a closed pipe) is not an
/// error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Progress of a run on stderr: a bar redrawn in place on a terminal, a plain line every tenth
/// of the way otherwise.
pub(crate) struct ProgressLine {
    label: String,
    terminal: bool,
    state: Mutex<(Instant, u64)>,
}

impl ProgressLine {
    pub(crate) fn new(label: &str) -> Self {
        ProgressLine {
            label: label.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((Instant::now() - Duration::from_secs(1), u64::MAX)),
        }
    }

    pub(crate) fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

impl saga_examples::Progress for ProgressLine {
    fn update(&self, done: u64, total: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let total = total.max(1);
        if self.terminal {
            if state.0.elapsed() < Duration::from_millis(100) && done < total {
                return;
            }
            let width = 30;
            let filled = (done * width / total) as usize;
            eprint!(
                "\r{} [{}{}] {done}/{total}",
                self.label,
                "#".repeat(filled),
                " ".repeat(width as usize - filled)
            );
            state.0 = Instant::now();
        } else {
            let tenth = done * 10 / total;
            if state.1 != tenth {
                eprintln!("{}: {done}/{total}", self.label);
                state.1 = tenth;
            }
        }
    }
}
