use super::*;

fn scope(text: &str) -> GridScope {
    text.parse().unwrap()
}

#[test]
fn a_scope_encloses_what_lies_wholly_inside_it() {
    let district = scope("410102");
    assert!(district.encloses(&scope("410102001,410102002001")));
    assert!(district.encloses(&scope("410102")));
    assert!(district.encloses(&GridScope::default()), "an empty scope");
    assert!(
        !district.encloses(&scope("410102,410103001")),
        "partly outside"
    );
    assert!(!district.encloses(&scope("4101")), "wider");
    assert!(!district.encloses(&scope("*")));
    assert!(scope("*").encloses(&scope("410102,410105001001001")));
    assert!(scope("410102,410105").encloses(&scope("410102001,410105003")));
    assert!(!GridScope::default().encloses(&scope("410102001")));
}

#[test]
fn only_the_administrator_and_supervisors_change_postings() {
    let assigners: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| r.assigns_postings())
        .collect();
    assert_eq!(
        assigners,
        [Role::DistrictSupervisor, Role::CitySupervisor, Role::Admin]
    );
    for role in Role::ALL {
        assert!(
            !role.may_grant(Role::Server),
            "{role} grants the server's role"
        );
        if !role.assigns_postings() {
            assert!(
                Role::ALL.into_iter().all(|r| !role.may_grant(r)),
                "{role} grants a role"
            );
        }
    }
    assert!(Role::Admin.may_grant(Role::Admin));
    assert!(!Role::CitySupervisor.may_grant(Role::Admin));
    assert!(Role::CitySupervisor.may_grant(Role::CitySupervisor));
    assert!(!Role::DistrictSupervisor.may_grant(Role::CitySupervisor));
    assert!(Role::DistrictSupervisor.may_grant(Role::DistrictSupervisor));
    assert!(Role::DistrictSupervisor.may_grant(Role::SanitationWorker));
}

#[test]
fn a_district_supervisor_moves_people_within_the_district_only() {
    let own = scope("410102");
    let worker = Role::SanitationWorker;
    let assign = |user_scope: &str, new_role: Role, new_scope: &str| {
        Role::DistrictSupervisor.may_assign(
            &own,
            worker,
            &scope(user_scope),
            new_role,
            &scope(new_scope),
        )
    };
    assert_eq!(
        assign("410102001001", worker, "410102003002,410102003003"),
        Ok(())
    );
    assert_eq!(assign("", worker, "410102001"), Ok(()), "not posted yet");
    assert_eq!(
        assign("410102001001", worker, "410105001001"),
        Err(AssignRefused::NewScope(scope("410105001001")))
    );
    assert_eq!(
        assign("410105001001", worker, "410102001001"),
        Err(AssignRefused::UserScope(scope("410105001001"))),
        "taking someone from another district"
    );
    assert_eq!(
        assign("410102001,410105001", worker, "410102001"),
        Err(AssignRefused::UserScope(scope("410102001,410105001"))),
        "someone working partly in another district"
    );
    assert_eq!(
        assign("410102001001", Role::CitySupervisor, "410102"),
        Err(AssignRefused::NewRole {
            assigner: Role::DistrictSupervisor,
            role: Role::CitySupervisor
        })
    );
    assert_eq!(
        Role::DistrictSupervisor.may_assign(
            &own,
            Role::Admin,
            &scope("410102"),
            worker,
            &scope("410102")
        ),
        Err(AssignRefused::UserRole {
            assigner: Role::DistrictSupervisor,
            role: Role::Admin
        })
    );
}

#[test]
fn field_workers_and_the_command_centre_change_no_posting() {
    let everywhere = GridScope::everywhere();
    for role in [
        Role::EnforcementOfficer,
        Role::GridLeader,
        Role::Dispatcher,
        Role::ShiftLead,
        Role::HotlineOperator,
        Role::Server,
    ] {
        assert_eq!(
            role.may_assign(
                &everywhere,
                Role::Assistant,
                &scope("410102001001"),
                Role::Assistant,
                &scope("410102001002"),
            ),
            Err(AssignRefused::NotAnAssigner(role))
        );
    }
}

#[test]
fn the_city_level_posts_anyone_but_an_administrator() {
    let everywhere = GridScope::everywhere();
    let city = |user_role, new_role| {
        Role::CitySupervisor.may_assign(
            &everywhere,
            user_role,
            &scope("410105"),
            new_role,
            &scope("410102"),
        )
    };
    assert_eq!(
        city(Role::DistrictSupervisor, Role::DistrictSupervisor),
        Ok(())
    );
    assert_eq!(
        city(Role::Dispatcher, Role::Admin),
        Err(AssignRefused::NewRole {
            assigner: Role::CitySupervisor,
            role: Role::Admin
        })
    );
    assert_eq!(
        Role::Admin.may_assign(
            &everywhere,
            Role::Admin,
            &everywhere,
            Role::Dispatcher,
            &scope("410102")
        ),
        Ok(())
    );
    // An administrator posted to one district is held to it like anyone.
    assert_eq!(
        Role::Admin.may_assign(
            &scope("410102"),
            Role::Dispatcher,
            &scope("410102"),
            Role::Dispatcher,
            &scope("*")
        ),
        Err(AssignRefused::NewScope(GridScope::everywhere()))
    );
}

#[test]
fn nobody_changes_their_own_posting_and_team_roles_need_a_team() {
    assert_eq!(
        Role::check_posting("demo-city", "demo-city", Role::Acceptor, None),
        Err(AssignRefused::OwnPosting)
    );
    for role in Role::ALL.into_iter().filter(|r| r.needs_team()) {
        assert_eq!(
            Role::check_posting("demo-city", "w1", role, None),
            Err(AssignRefused::TeamRequired(role)),
            "{role}"
        );
        assert_eq!(
            Role::check_posting("demo-city", "w1", role, Some("sanitation")),
            Ok(())
        );
    }
    assert!(Role::EnforcementOfficer.needs_team());
    assert!(Role::DepartmentHandler.needs_team());
    assert!(!Role::GridLeader.needs_team());
    assert_eq!(
        Role::check_posting("demo-city", "w1", Role::GridLeader, None),
        Ok(())
    );
}
