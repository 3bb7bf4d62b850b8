//! The double report (双报告) end to end, on SQLite and on PostgreSQL: an enforcement
//! officer reports a missing power manhole cover (the power company's work, beyond the
//! officer's authority); the community's grid leader and the street's 下沉 official
//! are pushed a `double_report` notice and find it listed, the district's leader (a
//! narrower official is posted) is not told; a report of the officer's own team's
//! work tells nobody.

use serde_json::Value;

use wangge_tests::phone::Phone;
use wangge_tests::places::{import_grids, two_places};
use wangge_tests::{Server, add_user, answer, databases, http};

const PASSWORD: &str = "网格-2026-ok";

fn told(server: &Server, phone: &Phone) -> Vec<Value> {
    let (status, body) = answer(
        http()
            .get(server.url("/v1/double-reports"))
            .header("Authorization", format!("Bearer {}", phone.token))
            .call(),
    );
    assert_eq!(status, 200, "{body}");
    body["double_reports"].as_array().expect("list").clone()
}

#[test]
fn a_report_beyond_the_officers_authority_reaches_the_grid_leader_and_the_official() {
    let [(grid, position), _] = two_places();
    let community = grid.community().to_string();
    let street = grid.street().to_string();
    let district = grid.district().to_string();
    for database in databases() {
        let url = &database.url;
        let backend = database.backend;
        import_grids(url);
        let add = |id: &str, role: &str, team: Option<&str>, scope: &str| {
            add_user(url, id, role, team, scope, PASSWORD);
        };
        add(
            "officer",
            "enforcement_officer",
            Some("enforcement"),
            &community,
        );
        add("leader", "grid_leader", None, &community);
        add("street-official", "district_supervisor", None, &street);
        add("district-leader", "district_supervisor", None, &district);
        let server = Server::start(url, &[]);
        let mut officer = Phone::login(&server, "officer", PASSWORD);
        let leader = Phone::login(&server, "leader", PASSWORD);
        let official = Phone::login(&server, "street-official", PASSWORD);
        let district_leader = Phone::login(&server, "district-leader", PASSWORD);
        let mut leader_push = leader.push(&server);
        leader_push.expect("hello");
        let mut official_push = official.push(&server);
        official_push.expect("hello");

        // A power manhole cover: routed to the power company, not to enforcement.
        officer.report("case-cover", "C0105", grid, position);
        officer.sync(&server);
        let notice = leader_push.expect("double_report");
        assert_eq!(notice["case"], "case-cover", "{backend}");
        let notice = official_push.expect("double_report");
        assert_eq!(notice["case"], "case-cover", "{backend}");

        let listed = told(&server, &leader);
        assert_eq!(listed.len(), 1, "{backend}: {listed:?}");
        assert_eq!(listed[0]["case_id"], "case-cover");
        assert_eq!(listed[0]["recipient_as"], "grid_leader");
        assert_eq!(listed[0]["reporter"], "officer");
        assert_eq!(listed[0]["reporter_team"], "enforcement");
        assert_eq!(listed[0]["routed_team"], "power");
        assert_eq!(listed[0]["grid"], grid.to_string());
        let listed = told(&server, &official);
        assert_eq!(listed.len(), 1, "{backend}: {listed:?}");
        assert_eq!(listed[0]["recipient_as"], "official");
        // The street's official is the narrowest posted: the district's is not told.
        assert!(told(&server, &district_leader).is_empty(), "{backend}");
        assert!(told(&server, &officer).is_empty(), "{backend}");

        // The officer's own team's work (street vending) is within their authority.
        officer.report("case-vending", "E0101", grid, position);
        officer.sync(&server);
        // Synced again (an edit), the cover is not told twice.
        officer.sync(&server);
        let listed = told(&server, &leader);
        assert_eq!(listed.len(), 1, "{backend}: {listed:?}");
        assert_eq!(listed[0]["case_id"], "case-cover", "{backend}");

        // Without a token: 401.
        let (status, _) = answer(http().get(server.url("/v1/double-reports")).call());
        assert_eq!(status, 401, "{backend}");
    }
}
