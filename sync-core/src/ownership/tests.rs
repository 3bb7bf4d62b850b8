use super::*;

const RULES: &str = r#"
[[rule]]
categories = ["E01"]
team = "sanitation"
dispatch = "auto"

[[rule]]
categories = ["E0101"]          # 私搭乱建: enforcement, everywhere
team = "enforcement"

[[rule]]
categories = ["E01"]
area = "410105"                 # 金水区 handles its own city appearance through the queue
team = "enforcement"

[[rule]]
categories = ["*"]
area = "410105001"
team = "municipal_maintenance"

[[override]]
name = "金水路（市管道路）"
categories = ["C02", "E0401"]
team = "municipal_maintenance"
dispatch = "auto"
line = [[113.60, 34.760], [113.70, 34.760]]
buffer_m = 30

[[override]]
name = "紫荆山公园"
categories = ["*"]
team = "landscaping"
polygon = [[113.680, 34.760], [113.690, 34.760], [113.690, 34.770], [113.680, 34.770], [113.680, 34.760]]
"#;

fn ownership() -> Ownership {
    Ownership::from_toml_str(RULES, Catalog::builtin()).unwrap()
}

fn route(category: &str, grid: Option<&str>, at: Option<(f64, f64)>) -> Routing {
    ownership()
        .route(
            Catalog::builtin(),
            category.parse().unwrap(),
            grid.map(|g| g.parse().unwrap()),
            at.map(|(lon, lat)| LonLat::new(lon, lat).unwrap()),
        )
        .unwrap()
}

#[test]
fn the_most_specific_category_then_the_narrowest_area_wins() {
    // E0102 暴露垃圾 in 二七区: only the city-wide E01 rule matches.
    let r = route("E0102", Some("410103001001001"), None);
    assert_eq!(
        (r.team.as_str(), r.dispatch, r.decided_by),
        ("sanitation", DispatchMode::Auto, Decision::Rule(0))
    );
    // E0101 in 金水区: the category rule beats the district's major-class rule.
    let r = route("E0101", Some("410105002001001"), None);
    assert_eq!(
        (r.team.as_str(), r.decided_by),
        ("enforcement", Decision::Rule(1))
    );
    // E0102 in 金水区: same specificity (E01), the district is narrower than the city.
    let r = route("E0102", Some("410105002001001"), None);
    assert_eq!(
        (r.team.as_str(), r.dispatch, r.decided_by),
        ("enforcement", DispatchMode::Queue, Decision::Rule(2))
    );
    // A component in street 410105001: only the street's "*" rule matches.
    let r = route("C0101", Some("410105001001001"), None);
    assert_eq!(
        (r.team.as_str(), r.decided_by),
        ("municipal_maintenance", Decision::Rule(3))
    );
    // No rule: the catalogue's default team, through the queue.
    let r = route("C0118", Some("410103001001001"), None);
    let default = Catalog::builtin()
        .get(&"C0118".parse().unwrap())
        .unwrap()
        .team
        .clone();
    assert_eq!(
        (r.team, r.dispatch, r.decided_by),
        (default, DispatchMode::Queue, Decision::CatalogDefault)
    );
    // Without a grid, area rules cannot apply.
    assert_eq!(route("E0102", None, None).decided_by, Decision::Rule(0));
}

#[test]
fn an_override_wins_inside_its_area_for_its_categories() {
    // 25 m north of the road (0.000225° of latitude ≈ 25 m).
    let near = Some((113.65, 34.760_225));
    let r = route("C0203", Some("410105002001001"), near);
    assert_eq!(
        (r.team.as_str(), r.dispatch),
        ("municipal_maintenance", DispatchMode::Auto)
    );
    assert_eq!(
        r.decided_by,
        Decision::Override("金水路（市管道路）".into())
    );
    // 40 m away: outside the 30 m buffer.
    let far = Some((113.65, 34.760_36));
    assert_ne!(
        route("C0203", Some("410105002001001"), far).decided_by,
        Decision::Override("金水路（市管道路）".into())
    );
    // Past the end of the line.
    assert_eq!(
        route("C0203", None, Some((113.71, 34.76))).decided_by,
        Decision::CatalogDefault
    );
    // Not one of its categories.
    assert_eq!(
        route("E0102", Some("410103001001001"), near).decided_by,
        Decision::Rule(0)
    );
    // In the park polygon; the first matching override in file order wins on the road.
    let r = route("E0102", Some("410105002001001"), Some((113.685, 34.765)));
    assert_eq!(
        (r.team.as_str(), r.decided_by),
        ("landscaping", Decision::Override("紫荆山公园".into()))
    );
    let r = route("E0401", None, Some((113.685, 34.760_1)));
    assert_eq!(
        r.decided_by,
        Decision::Override("金水路（市管道路）".into())
    );
}

#[test]
fn bad_files_name_the_entry() {
    let catalog = Catalog::builtin();
    let cases = [
        (
            "[[rule]]\ncategories = [\"E99X\"]\nteam = \"sanitation\"",
            "rule 1",
        ),
        (
            "[[rule]]\ncategories = [\"E01\"]\nteam = \"nobody\"",
            "not in the catalogue",
        ),
        (
            "[[rule]]\ncategories = []\nteam = \"sanitation\"",
            "must not be empty",
        ),
        (
            "[[rule]]\ncategories = [\"*\"]\narea = \"4101x\"\nteam = \"sanitation\"",
            "rule 1",
        ),
        (
            "[[rule]]\ncategories = [\"*\"]\nteam = \"sanitation\"\ncolour = \"red\"",
            "colour",
        ),
        (
            "[[override]]\nname = \"x\"\ncategories = [\"*\"]\nteam = \"sanitation\"\nline = [[113.6, 34.7]]\nbuffer_m = 10",
            "two points",
        ),
        (
            "[[override]]\nname = \"x\"\ncategories = [\"*\"]\nteam = \"sanitation\"\nline = [[113.6, 34.7], [113.7, 34.7]]\nbuffer_m = 5000",
            "buffer_m",
        ),
        (
            "[[override]]\nname = \"x\"\ncategories = [\"*\"]\nteam = \"sanitation\"\npolygon = [[113.6, 34.7], [113.7, 34.7]]",
            "three corners",
        ),
        (
            "[[override]]\nname = \"x\"\ncategories = [\"*\"]\nteam = \"sanitation\"",
            "either",
        ),
        (
            "[[override]]\nname = \"x\"\ncategories = [\"*\"]\nteam = \"sanitation\"\npolygon = [[200, 34.7], [113.7, 34.7], [113.7, 34.8]]",
            "override \"x\"",
        ),
        ("not toml at all [", "ownership rules"),
    ];
    for (input, expected) in cases {
        let error = Ownership::from_toml_str(input, catalog)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{input:?} → {error}");
    }
    assert_eq!(
        Ownership::from_toml_str("", catalog).unwrap(),
        Ownership::default()
    );
}

#[test]
fn an_unknown_category_is_an_error() {
    let error = ownership()
        .route(Catalog::builtin(), "E0999".parse().unwrap(), None, None)
        .unwrap_err();
    assert_eq!(error, RouteError::UnknownCategory("E0999".parse().unwrap()));
}

fn posting(user: &str, role: Role, team: Option<&str>, scope: &str) -> Posting {
    Posting {
        user: user.into(),
        role,
        team: team.map(|t| TeamId::new(t).unwrap()),
        scope: scope.parse().unwrap(),
    }
}

#[test]
fn the_responsible_people_are_the_closest_posted() {
    let postings = [
        posting(
            "street-crew",
            Role::SanitationWorker,
            Some("sanitation"),
            "410105001",
        ),
        posting(
            "grid-crew",
            Role::SanitationWorker,
            Some("sanitation"),
            "410105001001001,410105001001002",
        ),
        posting(
            "other-grid",
            Role::SanitationWorker,
            Some("sanitation"),
            "410105001002",
        ),
        posting(
            "officer",
            Role::EnforcementOfficer,
            Some("enforcement"),
            "410105001001",
        ),
        posting("leader", Role::GridLeader, None, "410105001001"),
        posting("other-leader", Role::GridLeader, None, "410105001002"),
        posting("district", Role::DistrictSupervisor, None, "410105"),
        posting("city", Role::CitySupervisor, None, "*"),
    ];
    let team = TeamId::new("sanitation").unwrap();
    let who = responsible(&postings, &team, "410105001001001".parse().unwrap());
    assert_eq!(who.handlers, ["grid-crew", "street-crew"]);
    assert_eq!(who.grid_leaders, ["leader"]);
    assert_eq!(who.supervisors, ["city", "district"]);
    let nobody = responsible(&postings, &team, "410103001001001".parse().unwrap());
    assert!(nobody.handlers.is_empty() && nobody.grid_leaders.is_empty());
    assert_eq!(nobody.supervisors, ["city"]);
}

#[test]
fn the_builtin_rules_dispatch_emergencies_and_manhole_covers_at_once() {
    let catalog = Catalog::builtin();
    let ownership = Ownership::builtin(catalog).unwrap();
    let route = |code: &str| {
        ownership
            .route(catalog, code.parse().unwrap(), None, None)
            .unwrap()
    };
    let collapse = route("E0402");
    assert_eq!(
        (collapse.team.as_str(), collapse.dispatch),
        ("water", DispatchMode::Auto)
    );
    let cover = route("C0105");
    assert_eq!(
        (cover.team.as_str(), cover.dispatch),
        ("power", DispatchMode::Auto)
    );
    let garbage = route("E0102");
    assert_eq!(
        (garbage.team.as_str(), garbage.dispatch),
        ("sanitation", DispatchMode::Queue)
    );
    // Every manhole-cover category of the catalogue is covered.
    for category in catalog.categories_for(crate::catalog::PlanProblem::ManholeCovers) {
        assert_eq!(
            route(&category.code.to_string()).dispatch,
            DispatchMode::Auto,
            "{}",
            category.code
        );
    }
}

#[test]
fn patterns_are_shown_as_written() {
    let ownership = ownership();
    let shown: Vec<Vec<String>> = ownership
        .rules()
        .iter()
        .map(|r| r.categories.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(shown, [["E01"], ["E0101"], ["E01"], ["*"]]);
    let overrides: Vec<Vec<String>> = ownership
        .overrides()
        .iter()
        .map(|o| o.categories.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(overrides, [vec!["C02", "E0401"], vec!["*"]]);
    for text in ["*", "C", "E", "C01", "E05", "C0101", "E0505"] {
        assert_eq!(CategoryPattern::parse(text).unwrap().to_string(), text);
    }
}

#[test]
fn a_report_beyond_the_reporters_team_goes_to_the_grid_leader_and_the_narrowest_official() {
    let postings = [
        posting(
            "officer",
            Role::EnforcementOfficer,
            Some("enforcement"),
            "410105001001",
        ),
        posting("leader", Role::GridLeader, None, "410105001001"),
        posting("other-leader", Role::GridLeader, None, "410105001002"),
        posting(
            "street-official",
            Role::DistrictSupervisor,
            None,
            "410105001",
        ),
        posting("district", Role::DistrictSupervisor, None, "410105"),
        posting("city", Role::CitySupervisor, None, "*"),
    ];
    let officer = &postings[0];
    let grid: GridCode = "410105001001001".parse().unwrap();
    let water = TeamId::new("water").unwrap();
    let told = double_report(officer, &water, &postings, grid).expect("beyond authority");
    assert_eq!(told.grid_leaders, ["leader"]);
    assert_eq!(told.officials, ["street-official"]);
    assert_eq!(told.recipients(), ["leader", "street-official"]);
    // Their own team's work is within their authority.
    let enforcement = TeamId::new("enforcement").unwrap();
    assert_eq!(double_report(officer, &enforcement, &postings, grid), None);
    // Only field workers report beyond authority; a grid leader's report is not.
    assert_eq!(double_report(&postings[1], &water, &postings, grid), None);
    // Where no narrower official is posted, the city's is told.
    let elsewhere: GridCode = "410103001001001".parse().unwrap();
    let told = double_report(officer, &water, &postings, elsewhere).expect("beyond");
    assert!(told.grid_leaders.is_empty());
    assert_eq!(told.officials, ["city"]);
}
