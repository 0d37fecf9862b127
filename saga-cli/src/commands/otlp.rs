//! `--otlp URL`: the runtimes' spans sent to an OpenTelemetry collector (feature `otlp`).

use saga_core::runtime::SpanSink;
use std::sync::Arc;

/// Where OpenTelemetry's own exporters read the collector's address from.
const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Where a command's spans go, if anywhere.
#[derive(Default)]
pub(crate) struct Export {
    #[cfg(feature = "otlp")]
    exporter: Option<Arc<saga_core::otlp::OtlpExporter>>,
}

impl Export {
    /// The export `--otlp` asks for, or else `OTEL_EXPORTER_OTLP_ENDPOINT`, with the spans'
    /// resource named `service`; `Err` with the line that refuses a flag this binary cannot
    /// follow.
    pub(crate) fn start(flag: Option<&str>, service: &str) -> Result<Export, String> {
        let from_environment = || std::env::var(ENDPOINT_VARIABLE).ok().filter(|v| !v.is_empty());
        #[cfg(feature = "otlp")]
        {
            let Some(endpoint) = flag.map(str::to_owned).or_else(from_environment) else {
                return Ok(Export::default());
            };
            let exporter =
                saga_core::otlp::OtlpExporter::start(&endpoint, service).map_err(|e| e.to_string())?;
            eprintln!("{service}: sending spans to {endpoint}");
            Ok(Export { exporter: Some(exporter) })
        }
        #[cfg(not(feature = "otlp"))]
        {
            let _ = (from_environment, service);
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

    /// Sends what is still queued, once the runtimes have stopped.
    pub(crate) async fn finish(self) {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = self.exporter {
            exporter.flush().await;
            if exporter.dropped() > 0 {
                eprintln!("spans: {} dropped (the queue was full)", exporter.dropped());
            }
        }
    }
}
