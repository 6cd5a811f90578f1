//! The service as a process and the deployment template: start-up and refusal, limits,
//! graceful shutdown, log hygiene, fault injection, the crash loop, and the template's
//! contract with the code.

mod crash;
mod faults;
mod hygiene;
mod limits;
mod processes;
mod shutdown;
mod standard_webhooks;
mod template_contract;
