//! Routes to the team named by the `team` setting, but traps on any message
//! containing "boom": passes the upload checks, fails in production.
use switchboard_plugin::router::*;

struct Flaky;

impl Router for Flaky {
    fn route(input: Input) -> Result<Decision, String> {
        if input.message.lowercase_text().contains("boom") {
            panic!("boom");
        }
        let team = config("team").unwrap_or_else(|| "flaky".into());
        Ok(Decision::human(Assignee::Team(team), "flaky router"))
    }
}

switchboard_plugin::export_router!(Flaky);
