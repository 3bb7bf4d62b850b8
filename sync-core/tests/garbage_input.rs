//! Nothing panics on input: every truncation and many byte mutations of valid inputs
//! must come back as `Ok` or a typed error.

use wangge_sync_core::catalog::{Catalog, CategoryCode, DEFAULT_TOML};
use wangge_sync_core::grid::geojson::{read_districts, read_grids};
use wangge_sync_core::grid::{GridCode, Level3Code};

const GRIDS: &str = r#"{"type":"FeatureCollection","features":[
{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[113.6,34.7],[113.601,34.7],[113.601,34.701],[113.6,34.701],[113.6,34.7]]]},
 "properties":{"code":"410105001001001","district":"410105","district_name":"金水区","street":"410105001","street_name":"第1街道","street_kind":"subdistrict","community":"410105001001","community_name":"第1社区","level3":"410105001001-01","level3_name":"第1网格"}},
{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[113.601,34.7],[113.602,34.7],[113.602,34.701],[113.601,34.701],[113.601,34.7]],[[113.6013,34.7003],[113.6017,34.7003],[113.6017,34.7007],[113.6013,34.7003]]]]},
 "properties":{"code":"410105001001002","district":"410105","district_name":"金水区","street":"410105001","street_name":"第1街道","street_kind":"subdistrict","community":"410105001001","community_name":"第1社区","level3":"410105001001-01","level3_name":"第1网格"}}]}"#;

const REPLACEMENTS: [u8; 9] = [b'{', b']', b'"', b'-', b'9', b'e', b'.', b',', 0xff];

fn mutations(valid: &[u8], mut check: impl FnMut(&[u8])) {
    for cut in 0..valid.len() {
        check(&valid[..cut]);
    }
    let mut buffer = valid.to_vec();
    for position in 0..valid.len() {
        for replacement in REPLACEMENTS {
            buffer[position] = replacement;
            check(&buffer);
        }
        buffer[position] = valid[position];
    }
}

#[test]
fn mutated_grid_files_never_panic() {
    assert!(
        read_grids(GRIDS.as_bytes()).is_ok(),
        "the seed input is valid"
    );
    let mut refused = 0;
    mutations(GRIDS.as_bytes(), |bytes| {
        if read_grids(bytes).is_err() {
            refused += 1;
        }
        let _ = read_districts(bytes);
    });
    assert!(
        refused > GRIDS.len(),
        "most mutations must be refused ({refused})"
    );
}

#[test]
fn mutated_catalogues_never_panic() {
    let valid = DEFAULT_TOML.as_bytes();
    // Every 31st position keeps this quick while still covering every kind of line.
    let mut refused = 0;
    for cut in (0..valid.len()).step_by(31) {
        if let Ok(text) = std::str::from_utf8(&valid[..cut])
            && Catalog::from_toml_str(text).is_err()
        {
            refused += 1;
        }
    }
    let mut buffer = valid.to_vec();
    for position in (0..valid.len()).step_by(31) {
        for replacement in REPLACEMENTS {
            buffer[position] = replacement;
            if let Ok(text) = std::str::from_utf8(&buffer) {
                let _ = Catalog::from_toml_str(text);
            }
        }
        buffer[position] = valid[position];
    }
    assert!(refused > 50, "{refused}");
}

#[test]
fn odd_codes_never_panic() {
    for text in [
        "",
        "-",
        "４１０１０５００１００１００１",
        "410105001001001\n",
        "4101050010010011",
        "410105001001-1",
        "-01",
        "410105001001-",
        "410105001001-999",
        "99999999999999999999",
        "C",
        "C01",
        "C0000",
        "X0101",
        "c0101",
        "C01011",
        "C０101",
    ] {
        let _ = text.parse::<GridCode>();
        let _ = text.parse::<Level3Code>();
        let _ = text.parse::<CategoryCode>();
    }
}

mod documents {
    use chrono::{NaiveDate, TimeZone, Utc};
    use wangge_sync_core::calendar::WorkCalendar;
    use wangge_sync_core::case::{
        Action, CaseDocument, NewCase, Position, Source, WorkflowContext, rules,
    };
    use wangge_sync_core::catalog::{Catalog, TeamId};
    use wangge_sync_core::patrol::{CheckIn, PatrolLog, TrackPoint};
    use wangge_sync_core::role::{Actor, Role};

    fn actor(n: u32, role: Role, team: Option<&str>, scope: &str) -> Actor {
        Actor {
            user: format!("u{n}"),
            role,
            team: team.map(|t| TeamId::new(t).expect("team id")),
            scope: scope.parse().expect("scope"),
            device: format!("{n:032x}"),
        }
    }

    fn case() -> (CaseDocument, Actor) {
        let officer = actor(
            1,
            Role::EnforcementOfficer,
            Some("enforcement"),
            "410102001",
        );
        let acceptor = actor(2, Role::Acceptor, None, "410102");
        let at = Utc
            .with_ymd_and_hms(2026, 11, 23, 1, 0, 0)
            .single()
            .expect("valid time");
        let new = NewCase {
            id: "case-g".into(),
            category: "E0102".parse().expect("category"),
            location: Position {
                lon: 113.66,
                lat: 34.75,
                accuracy_m: Some(5.0),
            },
            grid: Some("410102001001001".parse().expect("grid")),
            address: "花园路".into(),
            description: "暴露垃圾".into(),
            source: Source::Patrol,
            source_ref: None,
            caller: None,
        };
        let mut case = CaseDocument::create(&new, &officer, "e0", at).expect("create");
        let calendar = WorkCalendar::standard();
        let context = WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &calendar,
        };
        case.act(
            &context,
            &acceptor,
            "e1",
            Action::Accept,
            at,
            Some("属实".into()),
        )
        .expect("accept");
        (case, officer)
    }

    #[test]
    fn mutated_case_documents_load_or_fail_and_always_fold() {
        let (case, _) = case();
        let calendar = WorkCalendar::standard();
        let context = WorkflowContext {
            catalog: Catalog::builtin(),
            calendar: &calendar,
        };
        let mut loaded = 0;
        super::mutations(&case.save(), |bytes| {
            if let Ok(case) = CaseDocument::load(bytes) {
                loaded += 1;
                let _ = case.fold(&context);
            }
        });
        assert!(loaded > 0);
    }

    #[test]
    fn mutated_incoming_changes_are_refused_or_judged_never_panic() {
        let (case, officer) = case();
        let base = case.automerge().clone();
        let mut edited = case.clone();
        edited
            .set_address(&officer, "花园路与农业路口")
            .expect("edit");
        let change = edited
            .automerge()
            .get_changes(&base.get_heads())
            .pop()
            .expect("one change");
        super::mutations(change.raw_bytes(), |bytes| {
            if let Ok(change) = automerge::Change::from_bytes(bytes.to_vec()) {
                let _ = rules::check_case_changes(&base, &[change], &officer);
            }
        });
    }

    #[test]
    fn mutated_patrol_logs_load_or_fail_and_always_read() {
        let worker = actor(
            1,
            Role::SanitationWorker,
            Some("sanitation"),
            "410102001001",
        );
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
        let mut log = PatrolLog::create(&worker, day).expect("create");
        let at = Utc
            .with_ymd_and_hms(2026, 11, 27, 1, 0, 0)
            .single()
            .expect("valid time");
        log.check_in(
            &worker,
            &CheckIn {
                id: "c1".into(),
                at,
                position: Position {
                    lon: 113.66,
                    lat: 34.75,
                    accuracy_m: None,
                },
                grid: None,
                note: None,
            },
        )
        .expect("check in");
        let points: Vec<TrackPoint> = (0..5)
            .map(|i| TrackPoint {
                at_ms: at.timestamp_millis() + i * 10_000,
                lon: 113.66,
                lat: 34.75,
                accuracy_m: Some(4.0),
            })
            .collect();
        log.record_track(&worker, &points).expect("track");
        super::mutations(&log.save(), |bytes| {
            if let Ok(log) = PatrolLog::load(bytes) {
                let _ = log.read();
            }
        });
    }
}
