//! The service as a process and the deployment template: start-up and refusal, limits,
//! graceful shutdown, log hygiene, fault injection, the crash loop, the metrics a scraper
//! reads, the traces an OTLP collector receives, the operations console in a real browser, and
//! the template's contract with the code.

mod console;
mod crash;
mod faults;
mod hygiene;
mod limits;
mod metrics;
mod otlp;
mod processes;
mod shutdown;
mod standard_webhooks;
mod template_contract;
