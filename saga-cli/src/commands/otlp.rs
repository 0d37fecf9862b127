//! `--otlp URL`: the runtimes' spans sent to an OpenTelemetry collector (feature `otlp`).

use crate::cli::OtlpArgs;
use saga_core::runtime::SpanSink;
use std::sync::Arc;

/// Where a command's spans go, if anywhere.
#[derive(Default)]
pub(crate) struct Export {
    #[cfg(feature = "otlp")]
    exporter: Option<Arc<saga_core::otlp::OtlpExporter>>,
}

impl Export {
    /// The export `--otlp` asks for, or else the one OpenTelemetry's environment names
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the traces URL, or `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// the collector's base URL), with the spans' resource named `service`. A flag it cannot follow is
    /// refused with one line on stderr and `Err` with the exit code (2); an environment it
    /// cannot follow is warned about and sends nothing.
    pub(crate) fn start(args: &OtlpArgs, service: &str) -> Result<Export, u8> {
        Export::started(args.otlp.as_deref(), service).map_err(|refused| {
            eprintln!("saga-cli: {refused}");
            2
        })
    }

    fn started(flag: Option<&str>, service: &str) -> Result<Export, String> {
        #[cfg(feature = "otlp")]
        {
            use saga_core::otlp::OtlpExporter;
            let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let (endpoint, from) = match flag {
                Some(url) => (url.to_owned(), "--otlp"),
                None => match variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                    Some(url) => (url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                    None => match variable("OTEL_EXPORTER_OTLP_ENDPOINT") {
                        Some(base) => (OtlpExporter::traces_url(&base), "OTEL_EXPORTER_OTLP_ENDPOINT"),
                        None => return Ok(Export::default()),
                    },
                },
            };
            match OtlpExporter::start(&endpoint, service) {
                Ok(exporter) => {
                    eprintln!("{service}: sending spans to {endpoint}");
                    Ok(Export { exporter: Some(exporter) })
                }
                Err(e) if flag.is_some() => Err(e.to_string()),
                Err(e) => {
                    eprintln!("saga-cli: warning: {from}: {e}; no spans are sent");
                    Ok(Export::default())
                }
            }
        }
        #[cfg(not(feature = "otlp"))]
        {
            let _ = service;
            match flag {
                Some(_) => Err("--otlp: this saga-cli was built without the otlp feature".into()),
                None => Ok(Export {}),
            }
        }
    }

    /// Where the runtimes hand their spans, if anywhere.
    pub(crate) fn sink(&self) -> Option<Arc<dyn SpanSink>> {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = &self.exporter {
            return Some(exporter.clone());
        }
        None
    }

    /// Sends what is still queued, once the runtimes have stopped, and says what was not sent.
    pub(crate) async fn finish(self) {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = self.exporter {
            exporter.flush().await;
            let (dropped, lost) = (exporter.dropped(), exporter.lost());
            if dropped + lost > 0 {
                eprintln!(
                    "spans: {} sent, {lost} lost (the collector failed), {dropped} dropped (the queue was full)",
                    exporter.sent()
                );
            }
        }
    }
}
