use super::*;

fn code(text: &str) -> CategoryCode {
    text.parse().unwrap()
}

/// A small valid catalogue that the error tests break one piece at a time.
const MINIMAL: &str = r#"
[defaults]
accept = "1 working_hour"
register = "1 working_hour"
dispatch = "1 working_hour"
verify = "4 working_hours"
close = "1 working_day"

[[team]]
id = "enforcement"
name_zh = "执法"
name_en = "Enforcement"

[[major_class]]
code = "C01"
name_zh = "公用设施"
name_en = "Public facilities"

[[category]]
code = "C0199"
name_zh = "测试部件"
name_en = "Test component"
team = "enforcement"
limits = { handle = "1 working_day" }
"#;

/// `MINIMAL` with `from` replaced by `to` (which must occur).
fn broken(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "{from:?} is not in MINIMAL");
    MINIMAL.replacen(from, to, 1)
}

fn error_of(text: &str) -> CatalogError {
    Catalog::from_toml_str(text).unwrap_err()
}

// ---------------------------------------------------------------------------------
// The built-in catalogue.

#[test]
fn builtin_parses() {
    let parsed = Catalog::from_toml_str(DEFAULT_TOML);
    assert!(parsed.is_ok(), "{}", parsed.unwrap_err());
    let builtin = Catalog::builtin();
    assert_eq!(builtin, &parsed.unwrap());
    assert!(builtin.categories().count() > 80);
}

#[test]
fn builtin_has_the_major_classes_of_cj_t_214() {
    let builtin = Catalog::builtin();
    let names = |kind| -> Vec<&str> {
        builtin
            .major_classes_of(kind)
            .map(|class| class.name_zh.as_str())
            .collect()
    };
    assert_eq!(
        names(Kind::Component),
        [
            "公用设施",
            "道路交通",
            "市容环境",
            "园林绿化",
            "房屋土地",
            "其他设施"
        ]
    );
    assert_eq!(
        names(Kind::Event),
        [
            "市容环境",
            "宣传广告",
            "施工管理",
            "突发事件",
            "街面秩序",
            "其他事件"
        ]
    );
    let class = builtin.major_class(Kind::Event, 5).unwrap();
    assert_eq!(
        (class.name_zh.as_str(), class.name_en.as_str()),
        ("街面秩序", "Street order")
    );
    assert!(builtin.major_class(Kind::Event, 7).is_none());
}

#[test]
fn builtin_has_the_design_examples() {
    let builtin = Catalog::builtin();
    let expected = [
        ("C0101", "上水井盖"),
        ("C0102", "污水井盖"),
        ("C0103", "雨水井盖"),
        ("C0104", "雨水箅子"),
        ("C0105", "电力井盖"),
        ("C0106", "路灯井盖"),
        ("C0107", "通讯井盖"),
        ("C0108", "电视井盖"),
        ("C0109", "网络井盖"),
        ("C0110", "热力井盖"),
        ("C0111", "燃气井盖"),
        ("C0114", "不明井盖"),
        ("C0118", "路灯"),
        ("C0209", "交通标志牌"),
        ("C0211", "交通护栏"),
        ("C0301", "公共厕所"),
        ("C0305", "垃圾箱"),
        ("C0307", "广告牌匾"),
        ("C0402", "行道树"),
        ("E0101", "私搭乱建"),
        ("E0102", "暴露垃圾"),
        ("E0103", "积存垃圾渣土"),
        ("E0104", "道路不洁"),
        ("E0201", "非法小广告"),
        ("E0301", "施工扰民"),
        ("E0302", "工地扬尘"),
        ("E0401", "路面塌陷"),
        ("E0501", "无照经营游商"),
        ("E0504", "店外经营"),
        ("E0505", "机动车乱停放"),
    ];
    for (text, name_zh) in expected {
        let category = builtin
            .get(&code(text))
            .unwrap_or_else(|| panic!("{text} is missing"));
        assert_eq!(category.name_zh, name_zh, "{text}");
    }
}

#[test]
fn builtin_covers_the_plans_problem_list() {
    let builtin = Catalog::builtin();
    for problem in PlanProblem::ALL {
        assert!(
            builtin.categories_for(problem).next().is_some(),
            "no category counts towards {} {}",
            problem.name_zh(),
            problem.name_en()
        );
    }
    let problem_of = |text| builtin.get(&code(text)).unwrap().plan_problem;
    assert_eq!(problem_of("E0550"), Some(PlanProblem::StreetVending));
    assert_eq!(problem_of("E0350"), Some(PlanProblem::RoadUpkeep));
    assert_eq!(problem_of("C0114"), Some(PlanProblem::ManholeCovers));
    assert_eq!(problem_of("E0251"), Some(PlanProblem::OutdoorAdvertising));
    assert_eq!(problem_of("E0250"), Some(PlanProblem::ShopSigns));
    assert_eq!(problem_of("E0102"), Some(PlanProblem::ExposedGarbage));
    assert_eq!(problem_of("C0550"), Some(PlanProblem::BuildingFacades));
    assert_eq!(
        problem_of("C0151"),
        Some(PlanProblem::OverheadLinesAndCabinets)
    );
    assert_eq!(problem_of("C0118"), Some(PlanProblem::Lighting));
    assert_eq!(problem_of("E0301"), None);
    // Every manhole cover counts towards 井盖.
    let covers: Vec<String> = builtin
        .categories_for(PlanProblem::ManholeCovers)
        .map(|category| category.code.to_string())
        .collect();
    for text in [
        "C0101", "C0102", "C0103", "C0105", "C0106", "C0107", "C0108", "C0109", "C0110", "C0111",
        "C0114",
    ] {
        assert!(covers.iter().any(|cover| cover == text), "{text}");
    }
}

#[test]
fn builtin_time_limits_follow_sample_city_practice() {
    let builtin = Catalog::builtin();
    let handle = |text| builtin.get(&code(text)).unwrap().limit(Step::Handle);
    assert_eq!(handle("E0102"), TimeLimit::working_hours(4)); // 暴露垃圾
    assert_eq!(handle("E0104"), TimeLimit::working_hours(2)); // 道路保洁
    assert_eq!(handle("E0103"), TimeLimit::working_days(2)); // 渣土
    assert_eq!(handle("C0405"), TimeLimit::working_days(5)); // 绿地养护
    for cover in builtin.categories_for(PlanProblem::ManholeCovers) {
        assert_eq!(
            cover.limit(Step::Handle),
            TimeLimit::hours(2),
            "{}",
            cover.code
        );
        assert_eq!(cover.limit(Step::Dispatch).unit, TimeUnit::Hours);
    }
    let ordinary = builtin.get(&code("E0504")).unwrap();
    assert_eq!(ordinary.limit(Step::Accept), TimeLimit::working_hours(1));
    assert_eq!(ordinary.limit(Step::Register), TimeLimit::working_hours(1));
    assert_eq!(ordinary.limit(Step::Dispatch), TimeLimit::working_hours(1));
    assert_eq!(ordinary.limit(Step::Verify), TimeLimit::working_hours(4));
    assert_eq!(ordinary.limit(Step::Close), TimeLimit::working_days(1));
    for emergency in builtin.categories_in("E04".parse().unwrap()) {
        for step in [Step::Accept, Step::Register, Step::Dispatch, Step::Handle] {
            assert_eq!(
                emergency.limit(step).unit,
                TimeUnit::Hours,
                "{} {step}",
                emergency.code
            );
        }
    }
}

#[test]
fn builtin_has_the_teams_and_bilingual_labels() {
    let builtin = Catalog::builtin();
    for (id, name_zh, external) in [
        ("enforcement", "执法", false),
        ("municipal_maintenance", "市政维护", false),
        ("sanitation", "环卫", false),
        ("landscaping", "园林", false),
        ("outdoor_advertising", "户外广告", false),
        ("power", "供电", true),
        ("gas", "燃气", true),
        ("water", "供水", true),
        ("telecom", "通信", true),
        ("traffic_police", "交警", true),
        ("housing", "房管", true),
    ] {
        let team = builtin
            .team(id)
            .unwrap_or_else(|| panic!("team {id} is missing"));
        assert_eq!((team.name_zh.as_str(), team.external), (name_zh, external));
    }
    assert_eq!(builtin.team("enforcement").unwrap().name_en, "Enforcement");
    assert!(builtin.team("police").is_none());
    for category in builtin.categories() {
        assert!(builtin.team(category.team.as_str()).is_some());
        assert!(!category.name_en.is_empty() && category.name_en.is_ascii());
        assert!(!category.name_zh.is_ascii(), "{}", category.code);
    }
}

#[test]
fn lookups_by_kind_and_major_class() {
    let builtin = Catalog::builtin();
    assert!(
        builtin
            .categories_of(Kind::Component)
            .all(|c| c.kind() == Kind::Component)
    );
    assert!(
        builtin
            .categories_of(Kind::Event)
            .all(|c| c.kind() == Kind::Event)
    );
    assert_eq!(
        builtin.categories_of(Kind::Component).count() + builtin.categories_of(Kind::Event).count(),
        builtin.categories().count()
    );
    let street_order: Vec<&str> = builtin
        .categories_in("E05".parse().unwrap())
        .map(|category| category.name_zh.as_str())
        .collect();
    assert_eq!(street_order.first(), Some(&"无照经营游商"));
    assert!(street_order.contains(&"占道经营"));
    let codes: Vec<CategoryCode> = builtin.categories().map(|c| c.code).collect();
    assert!(
        codes.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted by code"
    );
    assert!(builtin.get(&code("E0599")).is_none());
}

#[test]
fn round_trip_through_toml_gives_an_equal_catalogue() {
    let builtin = Catalog::builtin();
    let text = builtin.to_toml_string().unwrap();
    let back = Catalog::from_toml_str(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(&back, builtin);
    // Only the limits that differ from [defaults] are written.
    assert!(!text.contains("verify = \"4 working_hours\"\n\n"), "{text}");
    assert_eq!(back.to_toml_string().unwrap(), text);
}

#[test]
fn round_trip_through_json_gives_an_equal_catalogue() {
    let builtin = Catalog::builtin();
    let json = serde_json::to_string(builtin).unwrap();
    let back: Catalog = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, builtin);
}

#[test]
fn json_is_validated_too() {
    let json = r#"{"team": [], "major_class": [], "category": [{"code": "C0101",
        "name_zh": "上水井盖", "name_en": "Water supply manhole cover", "team": "water"}]}"#;
    let error = serde_json::from_str::<Catalog>(json).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("category \"C0101\": major class \"C01\" is not declared"),
        "{error}"
    );
}

#[test]
fn the_format_example_in_the_module_doc_parses() {
    let source = include_str!("../catalog.rs");
    let example: String = source
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .skip_while(|line| line.trim() != "```toml")
        .skip(1)
        .take_while(|line| line.trim() != "```")
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    assert!(example.contains("[[category]]"), "{example}");
    let catalog = Catalog::from_toml_str(&example).unwrap();
    let category = catalog.get(&code("E0102")).unwrap();
    assert_eq!(category.limit(Step::Handle), TimeLimit::working_hours(4));
    assert_eq!(category.plan_problem, Some(PlanProblem::ExposedGarbage));
}

#[test]
fn minimal_catalogue_parses_and_fills_in_defaults() {
    let catalog = Catalog::from_toml_str(MINIMAL).unwrap();
    let category = catalog.get(&code("C0199")).unwrap();
    assert_eq!(category.limit(Step::Handle), TimeLimit::working_days(1));
    assert_eq!(category.limit(Step::Verify), TimeLimit::working_hours(4));
    assert_eq!(category.plan_problem, None);
    assert!(category.aliases.is_empty());
    assert!(!catalog.team("enforcement").unwrap().external);
}

#[test]
fn an_empty_file_is_an_empty_catalogue() {
    let catalog = Catalog::from_toml_str("").unwrap();
    assert_eq!(catalog.categories().count(), 0);
    assert!(catalog.defaults().is_empty());
}

// ---------------------------------------------------------------------------------
// Every way a catalogue is refused.

#[test]
fn toml_syntax_error_gives_the_line() {
    let error = error_of(&broken("name_en = \"Test component\"", "name_en = "));
    let CatalogError::Toml { line, .. } = &error else {
        panic!("{error:?}");
    };
    let expected = MINIMAL
        .lines()
        .position(|l| l.contains("Test component"))
        .unwrap()
        + 1;
    assert_eq!(*line, Some(expected));
    assert!(
        error
            .to_string()
            .starts_with(&format!("invalid catalogue TOML at line {expected}")),
        "{error}"
    );
}

#[test]
fn unknown_fields_are_refused() {
    for (from, to, field) in [
        (
            "[defaults]\n",
            "[defaults]\nrespond = \"1 hour\"\n",
            "respond",
        ),
        (
            "id = \"enforcement\"",
            "id = \"enforcement\"\ncolour = \"red\"",
            "colour",
        ),
        (
            "code = \"C01\"",
            "code = \"C01\"\nkind = \"component\"",
            "kind",
        ),
        (
            "team = \"enforcement\"",
            "team = \"enforcement\"\ndescription = \"x\"",
            "description",
        ),
        (
            "{ handle = \"1 working_day\" }",
            "{ handel = \"1 working_day\" }",
            "handel",
        ),
        ("[defaults]", "[default]", "default"),
    ] {
        let error = error_of(&broken(from, to));
        assert!(
            matches!(error, CatalogError::Toml { line: Some(_), .. }),
            "{field}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("unknown field `{field}`")),
            "{message}"
        );
    }
}

#[test]
fn missing_required_field_is_refused() {
    let error = error_of(&broken("name_en = \"Test component\"\n", ""));
    assert!(matches!(error, CatalogError::Toml { .. }), "{error:?}");
    assert!(error.to_string().contains("name_en"), "{error}");
}

#[test]
fn malformed_values_are_refused_with_the_value_named() {
    for (from, to, named) in [
        ("code = \"C0199\"", "code = \"C199\"", "\"C199\""),
        ("code = \"C0199\"", "code = \"E0099\"", "\"E0099\""),
        ("code = \"C01\"", "code = \"C1\"", "\"C1\""),
        (
            "id = \"enforcement\"",
            "id = \"Enforcement\"",
            "\"Enforcement\"",
        ),
        (
            "{ handle = \"1 working_day\" }",
            "{ handle = \"1 week\" }",
            "\"week\"",
        ),
        ("{ handle = \"1 working_day\" }", "{ handle = 4 }", "4"),
        (
            "team = \"enforcement\"",
            "team = \"enforcement\"\nplan_problem = \"parking\"",
            "parking",
        ),
    ] {
        let error = error_of(&broken(from, to));
        assert!(
            matches!(error, CatalogError::Toml { line: Some(_), .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(named), "{named}: {error}");
    }
}

#[test]
fn duplicate_category_is_refused() {
    let text = format!(
        "{MINIMAL}\n[[category]]\ncode = \"C0199\"\nname_zh = \"又一个\"\nname_en = \"Again\"\nteam = \"enforcement\"\nlimits = {{ handle = \"2 working_days\" }}\n"
    );
    let error = error_of(&text);
    assert_eq!(
        error,
        CatalogError::DuplicateCategory {
            code: code("C0199")
        }
    );
    assert_eq!(error.to_string(), "category \"C0199\" is declared twice");
}

#[test]
fn duplicate_team_is_refused() {
    let text = format!(
        "{MINIMAL}\n[[team]]\nid = \"enforcement\"\nname_zh = \"执法\"\nname_en = \"Enforcement\"\n"
    );
    let error = error_of(&text);
    assert!(
        matches!(error, CatalogError::DuplicateTeam { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "team \"enforcement\" is declared twice");
}

#[test]
fn duplicate_major_class_is_refused() {
    let text = format!(
        "{MINIMAL}\n[[major_class]]\ncode = \"C01\"\nname_zh = \"公用\"\nname_en = \"Public\"\n"
    );
    let error = error_of(&text);
    assert!(
        matches!(error, CatalogError::DuplicateMajorClass { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "major class \"C01\" is declared twice");
}

#[test]
fn category_of_an_undeclared_major_class_is_refused() {
    let error = error_of(&broken("code = \"C0199\"", "code = \"E0199\""));
    assert_eq!(
        error,
        CatalogError::UnknownMajorClass {
            code: code("E0199")
        }
    );
    assert_eq!(
        error.to_string(),
        "category \"E0199\": major class \"E01\" is not declared"
    );
}

#[test]
fn category_with_an_unknown_team_is_refused() {
    let error = error_of(&broken("team = \"enforcement\"", "team = \"enforcment\""));
    assert!(
        matches!(error, CatalogError::UnknownTeam { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "category \"C0199\": unknown team \"enforcment\""
    );
}

#[test]
fn empty_names_are_refused() {
    for (from, to, message) in [
        (
            "name_zh = \"执法\"",
            "name_zh = \"\"",
            "team \"enforcement\": name_zh must not be empty",
        ),
        (
            "name_en = \"Public facilities\"",
            "name_en = \"  \"",
            "major class \"C01\": name_en must not be empty",
        ),
        (
            "name_zh = \"测试部件\"",
            "name_zh = \"\"",
            "category \"C0199\": name_zh must not be empty",
        ),
        (
            "team = \"enforcement\"",
            "team = \"enforcement\"\naliases = [\"ok\", \"\"]",
            "category \"C0199\": alias must not be empty",
        ),
    ] {
        let error = error_of(&broken(from, to));
        assert!(matches!(error, CatalogError::EmptyText { .. }), "{error:?}");
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn zero_limits_are_refused() {
    let error = error_of(&broken(
        "verify = \"4 working_hours\"",
        "verify = \"0 hours\"",
    ));
    assert_eq!(
        error,
        CatalogError::ZeroLimit {
            entry: Entry::Defaults,
            step: Step::Verify
        }
    );
    assert_eq!(
        error.to_string(),
        "[defaults]: the time limit for verify is zero"
    );

    let error = error_of(&broken(
        "{ handle = \"1 working_day\" }",
        "{ handle = \"0 working_days\" }",
    ));
    assert!(matches!(error, CatalogError::ZeroLimit { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "category \"C0199\": the time limit for handle is zero"
    );
}

#[test]
fn absurd_limits_are_refused() {
    let error = error_of(&broken(
        "{ handle = \"1 working_day\" }",
        "{ handle = \"366 working_days\" }",
    ));
    assert!(
        matches!(error, CatalogError::LimitTooLong { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "category \"C0199\": the time limit for handle, \"366 working_days\", is longer than 365 days"
    );
    let error = error_of(&broken(
        "close = \"1 working_day\"",
        "close = \"9000 hours\"",
    ));
    assert!(
        matches!(
            error,
            CatalogError::LimitTooLong {
                entry: Entry::Defaults,
                step: Step::Close,
                ..
            }
        ),
        "{error:?}"
    );
    // 365 days is still allowed.
    let catalog = Catalog::from_toml_str(&broken(
        "{ handle = \"1 working_day\" }",
        "{ handle = \"365 working_days\" }",
    ));
    assert!(catalog.is_ok());
}

#[test]
fn missing_limit_without_default_is_refused() {
    let error = error_of(&broken("limits = { handle = \"1 working_day\" }\n", ""));
    assert_eq!(
        error,
        CatalogError::MissingLimit {
            code: code("C0199"),
            step: Step::Handle
        }
    );
    assert_eq!(
        error.to_string(),
        "category \"C0199\": no time limit for handle, and [defaults] has none"
    );
    // A default makes it fine.
    let with_default = broken("[defaults]\n", "[defaults]\nhandle = \"3 working_days\"\n")
        .replacen("limits = { handle = \"1 working_day\" }\n", "", 1);
    let catalog = Catalog::from_toml_str(&with_default).unwrap();
    assert_eq!(
        catalog.get(&code("C0199")).unwrap().limit(Step::Handle),
        TimeLimit::working_days(3)
    );
}

#[test]
fn team_ids_are_checked() {
    assert!(TeamId::new("municipal_maintenance").is_ok());
    assert!(TeamId::new("team2").is_ok());
    for bad in ["", "2team", "Team", "team-a", "队伍", &"a".repeat(65)] {
        assert!(TeamId::new(bad).is_err(), "{bad:?}");
    }
}
