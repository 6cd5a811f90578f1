//! The saga: `statemachine.asl.json` (the single source of truth, deployed to Step Functions
//! as is), a durable local executor of that file, and the step handlers shared by both runtimes;
//! on AWS the handlers run in the step Lambda ([`lambda`]) over the DynamoDB store ([`dynamodb`]).

pub mod asl;
pub mod dynamodb;
pub mod executor;
pub mod lambda;
pub mod steps;
