//! HTTP glue shared by the components' axum integrations.

mod problem;

pub use problem::Problem;
