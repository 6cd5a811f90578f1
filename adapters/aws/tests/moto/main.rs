//! The AWS adapters' own tests on moto server: the table contract provisioned, and the step
//! Lambda binary driven through a stand-in of the Lambda Runtime API.

mod steps_lambda;
mod tables;
