//! `batch/v1`, one module per resource.

mod cronjobs;
mod jobs;

pub use cronjobs::CronJobs;
pub use jobs::Jobs;
