//! `orders-bench-load`: a fixed-rate, latency-corrected HTTP/1.1 load generator (the wrk2
//! model) for the benchmark, against the service or any other HTTP endpoint.
//!
//! The schedule is open loop and latency runs from each request's due time, so a stalled
//! server shows up in the figures instead of silently lowering the offered rate (coordinated
//! omission). See `run` for the loop, `report` for the figures, `--help` for the flags.
//!
//! The load runs on a tokio current-thread runtime: the tool shares two cores with the server
//! it measures, and one thread caps it at one core, leaves the other to the server whatever
//! the rate, and keeps the connection tasks from contending with each other across threads.
//! One thread keeps up: each request costs it a few microseconds of parsing and bookkeeping.

mod cli;
mod report;
mod run;
mod template;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Args, Config};
use crate::report::Report;
use crate::run::RunError;

const BAD_ARGUMENTS: u8 = 2;
const UNREACHABLE: u8 = 3;
const NO_ANSWER: u8 = 4;

fn main() -> ExitCode {
    // clap exits with 2 on a malformed command line, and prints its own usage.
    let args = Args::parse();
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orders-bench-load: {e}");
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orders-bench-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut outcome = match runtime.block_on(run::run(config.clone())) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("orders-bench-load: {e}");
            return ExitCode::from(match e {
                RunError::Resolve(..) | RunError::Unreachable(..) => UNREACHABLE,
            });
        }
    };
    // Summary first: it is what a harness needs even if the log cannot be written.
    let report = Report::new(&config, &outcome);
    match serde_json::to_string(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("orders-bench-load: cannot encode the report: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &config.log
        && let Err(e) = report::write_log(path, &mut outcome)
    {
        eprintln!("orders-bench-load: --log {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if report.answered == 0 {
        eprintln!(
            "orders-bench-load: no request was answered ({} sent, {} failed)",
            report.sent,
            report.errors.total()
        );
        return ExitCode::from(NO_ANSWER);
    }
    ExitCode::SUCCESS
}
