//! What the server does by itself to a case that has just changed (自动处理): where
//! is it, whose is it, and — where an ownership rule says so — the dispatch (派遣).
//!
//! The server is the authority on the grid: a phone locates a report with the grids it
//! has cached, the server with the grids it has now, and corrects the case when they
//! differ. Routing applies the ownership rules ([`crate::ownership`]); a rule with
//! `dispatch = "auto"` (urgent categories: missing manhole covers, emergencies) makes
//! the server accept, register and dispatch the case at once, to the team's worker
//! posted closest to the grid; every other case waits in the queue for the acceptor
//! and the dispatcher. Everything the server does is an ordinary timeline entry by
//! [`Role::Server`], so every phone shows it in the timeline and folds the same state.
//!
//! When a write changes the category or the location of a case already in hand, the
//! server routes it again: a dispatched case the rules now give to another team (or,
//! under an automatic rule, to another posted worker) is returned (退回) and, where
//! the rule says so, dispatched again (改派); otherwise the people who took it in hand
//! keep it, so a dispatcher's own choice of team stands.
//!
//! Pure: the caller passes the grids, the rules, the postings, the server's identity
//! and the time.

use automerge::ChangeHash;
use chrono::{DateTime, Utc};

use super::{Action, ActionName, CaseDocument, CaseError, Status, WorkflowContext};
use crate::catalog::TeamId;
use crate::geo::{Crs, LonLat};
use crate::grid::{GridCode, GridIndex};
use crate::ownership::{
    Decision, DispatchMode, Ownership, Posting, RouteError, Routing, responsible,
};
use crate::role::{Actor, Role};

/// What the server needs to act on cases.
#[derive(Clone, Copy)]
pub struct Automation<'a> {
    /// Catalogue and calendar.
    pub context: WorkflowContext<'a>,
    /// The ownership rules.
    pub ownership: &'a Ownership,
    /// The server's grids.
    pub grids: &'a GridIndex,
    /// The postings (who handles what where) whose scope covers a grid — at least
    /// those; others are ignored — asked for only when a case in that grid is
    /// dispatched automatically.
    pub postings: &'a dyn Fn(GridCode) -> Vec<Posting>,
}

impl std::fmt::Debug for Automation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Automation")
            .field("ownership", self.ownership)
            .finish_non_exhaustive()
    }
}

/// What the server did to a case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Automatic {
    /// The grid the server located the case in, when it differed from the document's
    /// (`Some(None)`: the position is outside every grid).
    pub relocated: Option<Option<GridCode>>,
    /// The routing, when the case could be routed.
    pub routing: Option<Routing>,
    /// The team a dispatched case was taken back from (退回) because its category or
    /// location changed and the ownership rules now route it elsewhere.
    pub returned: Option<TeamId>,
    /// The dispatch written: the team and, when someone is posted there, the person.
    pub dispatched: Option<(TeamId, Option<String>)>,
}

impl Automatic {
    /// Whether the server wrote anything.
    pub fn wrote(&self) -> bool {
        self.relocated.is_some() || self.returned.is_some() || self.dispatched.is_some()
    }
}

impl Automation<'_> {
    /// Acts on a case as `server` (an actor of [`Role::Server`] whose `device` is an
    /// Automerge actor id used for this write only, so two servers acting at once never
    /// write two changes with one actor and sequence number). Entry ids are derived
    /// from that actor id. `before` is the case as stored before the write the server
    /// reacts to (empty heads: a new case).
    ///
    /// A reported case is located, routed and — where the rule says so — dispatched. A
    /// case already in hand (accepted, registered, dispatched) is acted on only when
    /// the write changed its category or location: it is located again, dispatched if
    /// the rule for its new category and place is automatic, and a dispatched case
    /// whose team (or, for an automatic rule, whose posted worker) is no longer the
    /// responsible one is returned (退回) and dispatched again — or left in the
    /// dispatcher's queue when the rule says so. A dispatcher's own choice of team is
    /// never overridden while the category and location stay as they were.
    pub fn act(
        &self,
        doc: &mut CaseDocument,
        before: &[ChangeHash],
        server: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Automatic, CaseError> {
        debug_assert_eq!(server.role, Role::Server);
        let mut done = Automatic::default();
        let view = doc.fold(&self.context);
        let status = match view.status {
            Some(Status::Reported) => Status::Reported,
            Some(status @ (Status::Accepted | Status::Registered | Status::Dispatched))
                if doc.routing_changed_since(before) =>
            {
                status
            }
            _ => return Ok(done),
        };
        let record = &view.record;
        let point = record
            .location
            .and_then(|l| LonLat::new(l.lon, l.lat).ok().map(|p| (l, p)));
        // A grid is believed only where its reporter was posted when reporting (a
        // worker choosing one of their own grids by hand, a hotline operator naming
        // the grid a caller described).
        let report = view
            .entries
            .iter()
            .filter_map(|e| e.entry.as_ref())
            .find(|e| e.action.name() == ActionName::Report);
        let reporter_covers = report.is_some_and(|e| e.actor.scope.covers(record.grid.as_ref()));
        // An office role (the hotline, the command centre) naming the grid of a
        // caller's place outside every grid answers for it; a phone's position
        // outside every grid is believed over the grid it claimed.
        let office_claim =
            reporter_covers && report.is_some_and(|e| e.actor.role.answers_callers());
        let Some((location, point)) = point else {
            // Nothing to locate by: any claimed grid the reporter was not posted to
            // is taken away, so the case enters no other area's lists and waits for
            // the command centre to locate it.
            if record.grid.is_some() && !reporter_covers {
                doc.clear_grid(server)?;
                done.relocated = Some(None);
            }
            return Ok(done);
        };
        let gcj02 = point.to_gcj02(Crs::Wgs84);
        let located = match self.grids.locate_gcj02(gcj02) {
            None if record.grid.is_some() && office_claim => record.grid,
            located => located,
        };
        if located != record.grid {
            doc.set_location(server, location, located)?;
            done.relocated = Some(located);
        }
        let Some(category) = record.category else {
            return Ok(done);
        };
        let routing =
            match self
                .ownership
                .route(self.context.catalog, category, located, Some(gcj02))
            {
                Ok(routing) => routing,
                Err(RouteError::UnknownCategory(_)) => return Ok(done),
            };
        let automatic = match (routing.dispatch, located) {
            (DispatchMode::Auto, Some(grid)) => {
                let assignee = responsible(&(self.postings)(grid), &routing.team, grid)
                    .handlers
                    .into_iter()
                    .next();
                Some(assignee)
            }
            _ => None,
        };
        let mut steps: Vec<(Action, Option<String>)> = match status {
            Status::Reported => vec![(Action::Accept, None), (Action::Register, None)],
            Status::Accepted => vec![(Action::Register, None)],
            Status::Registered => Vec::new(),
            _ => {
                let current = view.assignment.as_ref();
                let team_changed = current.map(|a| &a.team) != Some(&routing.team);
                let person_changed = match &automatic {
                    Some(assignee) => current.map(|a| &a.assignee) != Some(assignee),
                    None => false,
                };
                if !(team_changed || person_changed) {
                    done.routing = Some(routing);
                    return Ok(done);
                }
                done.returned = current.map(|a| a.team.clone());
                let note = format!(
                    "改派 re-routed: the category or location changed; now for {} ({})",
                    routing.team.as_str(),
                    describe(&routing.decided_by)
                );
                vec![(Action::Return, Some(note))]
            }
        };
        let Some(assignee) = automatic else {
            // Into the dispatcher's queue: only a return to write, if any.
            if steps.iter().any(|(a, _)| *a == Action::Return) {
                self.write(doc, server, steps, now)?;
            }
            done.routing = Some(routing);
            return Ok(done);
        };
        let note = format!(
            "自动派遣 automatic dispatch ({})",
            describe(&routing.decided_by)
        );
        steps.push((
            Action::Dispatch {
                team: routing.team.clone(),
                assignee: assignee.clone(),
            },
            Some(note),
        ));
        self.write(doc, server, steps, now)?;
        done.dispatched = Some((routing.team.clone(), assignee));
        done.routing = Some(routing);
        Ok(done)
    }

    /// Writes the server's timeline entries, numbered after its actor id.
    fn write(
        &self,
        doc: &mut CaseDocument,
        server: &Actor,
        steps: Vec<(Action, Option<String>)>,
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(n, (action, note))| (format!("server-{}-{n}", server.device), action, note))
            .collect();
        doc.act_all(&self.context, server, steps, now)
    }
}

/// Which ownership decision routed a case, for the timeline note.
fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Override(name) => format!("override {name}"),
        Decision::Rule(index) => format!("rule {}", index + 1),
        Decision::CatalogDefault => "catalogue default".to_owned(),
    }
}

/// Escalates (逐级上报) a case whose running step is past its due time to the next
/// level of the responsibility chain (street → district → city), as `server`; returns
/// whether it did. Escalation starts a new dispatch step at the higher level, so an
/// overdue step is escalated once; a case at city level stays where it is.
pub fn escalate_overdue(
    context: &WorkflowContext<'_>,
    doc: &mut CaseDocument,
    server: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, CaseError> {
    let view = doc.fold(context);
    if !matches!(view.status, Some(Status::Registered | Status::Dispatched))
        || !view.is_overdue(now)
        || view.level.up().is_none()
    {
        return Ok(false);
    }
    let step = view.current_step().map(|s| (s.step, s.due_at));
    let note = match step {
        Some((step, Some(due))) => format!(
            "超期升级 overdue escalation: {} ({}) was due {}",
            step.name_zh(),
            step.as_str(),
            due.to_rfc3339()
        ),
        _ => "超期升级 overdue escalation".to_owned(),
    };
    let id = format!("server-{}-escalate", server.device);
    doc.act(context, server, &id, Action::Escalate, now, Some(note))?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ::geo::{MultiPolygon, Rect, coord};

    use super::*;
    use crate::case::entry::ActionName;
    use crate::case::fold::Outcome;
    use crate::case::tests::{GRID, at, cast, context, new_case};
    use crate::catalog::CategoryCode;
    use crate::geo::wgs84_to_gcj02;
    use crate::grid::{GridSet, Hierarchy, UnitGrid};

    /// Two unit grids side by side: `GRID` around the test case's position, and its
    /// eastern neighbour.
    fn grids() -> GridIndex {
        let case = new_case().location;
        let centre = wgs84_to_gcj02(LonLat::new(case.lon, case.lat).unwrap());
        let square = |x: f64| {
            MultiPolygon(vec![
                Rect::new(
                    coord! { x: x - 0.0005, y: centre.lat - 0.0005 },
                    coord! { x: x + 0.0005, y: centre.lat + 0.0005 },
                )
                .to_polygon(),
            ])
        };
        let mut h = Hierarchy::default();
        let grids = [(GRID, centre.lon), ("410102001001002", centre.lon + 0.001)]
            .into_iter()
            .map(|(code, x)| {
                let code: GridCode = code.parse().unwrap();
                let level3 = code.community().level3(1).unwrap();
                h.districts.insert(code.district(), "区".into());
                h.streets.insert(code.street(), "街道".into());
                h.communities.insert(code.community(), "社区".into());
                h.level3.insert(level3, "网格".into());
                UnitGrid {
                    code,
                    level3,
                    geometry: square(x),
                }
            })
            .collect();
        GridIndex::build(GridSet::new(h, grids).unwrap()).unwrap()
    }

    fn postings() -> Vec<Posting> {
        let cast = cast();
        [cast.officer, cast.sanitation]
            .into_iter()
            .map(|a| Posting {
                user: a.user,
                role: a.role,
                team: a.team,
                scope: a.scope,
            })
            .collect()
    }

    fn report(category: &str, grid: Option<&str>, lon_shift: f64) -> CaseDocument {
        let mut case = new_case();
        case.category = category.parse::<CategoryCode>().unwrap();
        case.grid = grid.map(|g| g.parse().unwrap());
        case.location.lon += lon_shift;
        CaseDocument::create(&case, &cast().officer, "e0", at(0)).unwrap()
    }

    /// The built-in rules on a new report.
    fn run(doc: &mut CaseDocument) -> Automatic {
        act_after(doc, &[], None, &postings())
    }

    #[test]
    fn an_urgent_category_is_dispatched_to_the_worker_posted_there() {
        // C0101 上水井盖 (a manhole cover): the built-in rules dispatch it at once.
        let mut doc = report("C0101", Some(GRID), 0.0);
        let done = run(&mut doc);
        let view = doc.fold(&context());
        assert_eq!(view.status, Some(Status::Dispatched), "{:?}", view.entries);
        let assignment = view.assignment.unwrap();
        assert_eq!(assignment.team.as_str(), "water"); // 上水: the water company
        // Nobody of that team is posted here: the team, no person.
        assert_eq!(assignment.assignee, None);
        assert_eq!(done.dispatched, Some((assignment.team, None)));
        assert_eq!(done.relocated, None);
        // Acting again changes nothing: the case is no longer waiting, and a write
        // on top of these heads would change neither category nor location.
        let heads = doc.automerge().get_heads();
        assert_eq!(
            act_after(&mut doc, &heads, None, &postings()),
            Automatic::default()
        );
        assert_eq!(doc.automerge().get_heads(), heads);
    }

    #[test]
    fn an_automatic_dispatch_names_the_posted_worker() {
        // E0401 (an emergency) goes to its catalogue team automatically; make the
        // sanitation worker's category: exposed garbage is queued, so use a rule.
        let mut doc = report("E0102", Some(GRID), 0.0);
        let done = act_after(&mut doc, &[], Some(AUTO_RULES), &postings());
        let view = doc.fold(&context());
        assert_eq!(view.status, Some(Status::Dispatched));
        let assignment = view.assignment.unwrap();
        assert_eq!(assignment.team.as_str(), "sanitation");
        assert_eq!(assignment.assignee.as_deref(), Some("u2"));
        assert!(done.wrote());
        let server_entries: Vec<_> = view
            .entries
            .iter()
            .filter_map(|e| e.entry.as_ref())
            .filter(|e| e.actor.role == Role::Server)
            .map(|e| e.action.name())
            .collect();
        assert_eq!(server_entries.len(), 3);
    }

    #[test]
    fn a_queued_category_is_routed_but_left_to_the_dispatcher() {
        let mut doc = report("E0102", Some(GRID), 0.0);
        let heads = doc.automerge().get_heads();
        let done = run(&mut doc);
        assert_eq!(doc.automerge().get_heads(), heads, "nothing written");
        let routing = done.routing.unwrap();
        assert_eq!(routing.team.as_str(), "sanitation");
        assert_eq!(routing.dispatch, DispatchMode::Queue);
        assert_eq!(doc.fold(&context()).status, Some(Status::Reported));
    }

    /// The reporter takes the location away and claims `grid` (as a tampered phone
    /// could: the reporter may edit both fields).
    fn unlocated(grid: &str) -> (CaseDocument, Vec<ChangeHash>) {
        use automerge::transaction::Transactable as _;
        let mut doc = report("C0101", Some(GRID), 0.0);
        let before = doc.automerge().get_heads();
        let mut tx = doc.automerge_mut().transaction();
        tx.delete(automerge::ROOT, "location").unwrap();
        tx.put(automerge::ROOT, "grid", grid).unwrap();
        tx.commit();
        (doc, before)
    }

    #[test]
    fn a_grid_the_hotline_named_for_a_place_outside_every_grid_stands() {
        // The caller's place is ~90 km east of every grid; the operator named GRID.
        let mut case = new_case();
        case.category = "C0101".parse::<CategoryCode>().unwrap();
        case.source = crate::case::Source::Hotline;
        case.location.lon += 1.0;
        let mut doc = CaseDocument::create(&case, &cast().hotline, "e0", at(0)).unwrap();
        let done = run(&mut doc);
        assert_eq!(done.relocated, None);
        let view = doc.fold(&context());
        assert_eq!(
            view.record.grid.map(|g| g.to_string()).as_deref(),
            Some(GRID)
        );
        // Routed and, for a manhole cover, dispatched by the named grid.
        assert_eq!(view.status, Some(Status::Dispatched));
        // An officer's phone claiming the same grid from the same place is not
        // believed: its position says it is outside every grid.
        let mut phone = report("C0101", Some(GRID), 1.0);
        assert_eq!(run(&mut phone).relocated, Some(None));
    }

    #[test]
    fn a_grid_without_a_location_is_believed_only_inside_the_reporters_posting() {
        // Another district's grid, nothing to locate by: taken away.
        let (mut doc, before) = unlocated("410103001001001");
        let done = act_after(&mut doc, &before, None, &postings());
        assert_eq!(done.relocated, Some(None));
        let view = doc.fold(&context());
        assert_eq!(view.record.grid, None);
        assert_eq!(view.status, Some(Status::Reported));
        // One of the reporter's own grids, chosen by hand: kept.
        let (mut doc, before) = unlocated("410102001001002");
        let done = act_after(&mut doc, &before, None, &postings());
        assert_eq!(done.relocated, None);
        assert_eq!(
            doc.fold(&context()).record.grid.map(|g| g.to_string()),
            Some("410102001001002".to_owned())
        );
    }

    #[test]
    fn the_server_corrects_the_grid_a_phone_located() {
        // The phone said GRID; the position is in the neighbour (~90 m east).
        let mut doc = report("E0102", Some(GRID), 0.001);
        let done = run(&mut doc);
        let neighbour: GridCode = "410102001001002".parse().unwrap();
        assert_eq!(done.relocated, Some(Some(neighbour)));
        assert_eq!(doc.read().grid, Some(neighbour));
        // Far outside every grid: the grid is cleared, the case stays in the queue.
        let mut lost = report("C0101", Some(GRID), 1.0);
        let done = run(&mut lost);
        assert_eq!(done.relocated, Some(None));
        assert_eq!(done.dispatched, None);
        assert_eq!(lost.read().grid, None);
        assert_eq!(lost.fold(&context()).status, Some(Status::Reported));
    }

    /// E0101 (illegal vending: enforcement) and E0102 (exposed garbage: sanitation)
    /// dispatched automatically.
    const AUTO_RULES: &str = "[[rule]]\ncategories = [\"E0101\", \"E0102\"]\ndispatch = \"auto\"\n";

    /// Runs the automation with `rules` (`None`: the built-in ones) and `postings` on
    /// `doc`, after a write made on top of `before`, as a fresh server actor.
    fn act_after(
        doc: &mut CaseDocument,
        before: &[ChangeHash],
        rules: Option<&str>,
        postings: &[Posting],
    ) -> Automatic {
        let catalog = context().catalog;
        let ownership = match rules {
            Some(toml) => Ownership::from_toml_str(toml, catalog).unwrap(),
            None => Ownership::builtin(catalog).unwrap(),
        };
        let index = grids();
        let automation = Automation {
            context: context(),
            ownership: &ownership,
            grids: &index,
            postings: &|_| postings.to_vec(),
        };
        let mut server = cast().server;
        // Two server writes never share an actor id.
        let writes = doc.automerge().get_changes(&[]).len();
        server.device = format!("{:032x}", 1000 + writes);
        automation.act(doc, before, &server, at(5)).unwrap()
    }

    fn server_actions(doc: &CaseDocument) -> Vec<ActionName> {
        doc.fold(&context())
            .entries
            .iter()
            .filter_map(|e| e.entry.as_ref())
            .filter(|e| e.actor.role == Role::Server)
            .map(|e| e.action.name())
            .collect()
    }

    fn heads(doc: &CaseDocument) -> Vec<ChangeHash> {
        doc.automerge().get_heads()
    }

    #[test]
    fn a_dispatched_case_whose_category_changes_is_returned_and_dispatched_again() {
        let mut doc = report("E0102", Some(GRID), 0.0);
        act_after(&mut doc, &[], Some(AUTO_RULES), &postings());
        let view = doc.fold(&context());
        assert_eq!(view.assignment.unwrap().team.as_str(), "sanitation");
        // The acceptor reclassifies it: illegal vending (E0101) is enforcement's.
        let before = heads(&doc);
        doc.set_category(&cast().acceptor, "E0101".parse().unwrap())
            .unwrap();
        let done = act_after(&mut doc, &before, Some(AUTO_RULES), &postings());
        assert_eq!(done.returned.unwrap().as_str(), "sanitation");
        let (team, assignee) = done.dispatched.unwrap();
        assert_eq!(team.as_str(), "enforcement");
        assert_eq!(assignee.as_deref(), Some("u1"), "the officer posted there");
        let view = doc.fold(&context());
        assert_eq!(view.status, Some(Status::Dispatched));
        assert_eq!(view.assignment.unwrap().team.as_str(), "enforcement");
        assert_eq!(view.counts.returns, 1);
        assert_eq!(view.counts.dispatches, 2);
        assert!(
            view.entries.iter().all(|e| e.outcome == Outcome::Applied),
            "{:?}",
            view.entries
        );
        assert_eq!(
            server_actions(&doc),
            [
                ActionName::Accept,
                ActionName::Register,
                ActionName::Dispatch,
                ActionName::Return,
                ActionName::Dispatch
            ]
        );
        // A later write that leaves category and location alone changes nothing.
        let before = heads(&doc);
        doc.act(
            &context(),
            &cast().officer,
            "c1",
            Action::Comment,
            at(6),
            Some("到场".into()),
        )
        .unwrap();
        let after = heads(&doc);
        let done = act_after(&mut doc, &before, Some(AUTO_RULES), &postings());
        assert_eq!(done, Automatic::default());
        assert_eq!(heads(&doc), after);
    }

    #[test]
    fn a_dispatchers_choice_stands_until_the_category_or_location_changes() {
        // Queued (built-in rules): the command centre sends it to enforcement, not to
        // the catalogue's sanitation team.
        let mut doc = report("E0102", Some(GRID), 0.0);
        let cast = cast();
        let context = context();
        let human = [
            (&cast.acceptor, Action::Accept),
            (&cast.shift_lead, Action::Register),
            (
                &cast.dispatcher,
                Action::Dispatch {
                    team: TeamId::new("enforcement").unwrap(),
                    assignee: None,
                },
            ),
        ];
        for (n, (actor, action)) in human.into_iter().enumerate() {
            doc.act(&context, actor, &format!("h{n}"), action, at(2), None)
                .unwrap();
        }
        let before = heads(&doc);
        doc.set_address(&cast.acceptor, "花园路 1 号").unwrap();
        let after = heads(&doc);
        let done = act_after(&mut doc, &before, None, &postings());
        assert_eq!(done, Automatic::default(), "only the address changed");
        assert_eq!(heads(&doc), after);
        // Reclassified as E0103 (the catalogue's sanitation too): the routing now
        // disagrees with the dispatch, and the rule queues it.
        let before = heads(&doc);
        doc.set_category(&cast.acceptor, "E0103".parse().unwrap())
            .unwrap();
        let done = act_after(&mut doc, &before, None, &postings());
        assert_eq!(done.returned.unwrap().as_str(), "enforcement");
        assert_eq!(done.dispatched, None, "back in the dispatcher's queue");
        let view = doc.fold(&context);
        assert_eq!(view.status, Some(Status::Registered));
        assert_eq!(view.assignment, None);
        let note = view
            .entries
            .iter()
            .filter_map(|e| e.entry.as_ref())
            .find(|e| e.action == Action::Return)
            .and_then(|e| e.note.clone())
            .unwrap();
        assert!(note.contains("sanitation"), "{note}");
    }

    #[test]
    fn a_case_moved_into_another_workers_grid_is_dispatched_to_them() {
        // Two enforcement officers, each posted to one of the two grids.
        let neighbour = "410102001001002";
        let officer = |user: &str, scope: &str| Posting {
            user: user.into(),
            role: Role::EnforcementOfficer,
            team: Some(TeamId::new("enforcement").unwrap()),
            scope: scope.parse().unwrap(),
        };
        let postings = [officer("u1", GRID), officer("u20", neighbour)];
        let mut doc = report("E0101", Some(GRID), 0.0);
        act_after(&mut doc, &[], Some(AUTO_RULES), &postings);
        let assignee = |doc: &CaseDocument| doc.fold(&context()).assignment.unwrap().assignee;
        assert_eq!(assignee(&doc).as_deref(), Some("u1"));
        // The acceptor corrects the position: ~90 m east, in the neighbour grid.
        let before = heads(&doc);
        let mut moved = new_case().location;
        moved.lon += 0.001;
        doc.set_location(&cast().acceptor, moved, Some(neighbour.parse().unwrap()))
            .unwrap();
        let done = act_after(&mut doc, &before, Some(AUTO_RULES), &postings);
        assert_eq!(done.relocated, None, "the acceptor's grid was right");
        assert_eq!(done.returned.unwrap().as_str(), "enforcement");
        assert_eq!(assignee(&doc).as_deref(), Some("u20"));
        // Moved outside every grid: nobody is better placed, the case stays where it
        // is (the grid is cleared).
        let before = heads(&doc);
        let mut far = moved;
        far.lon += 1.0;
        doc.set_location(&cast().acceptor, far, Some(neighbour.parse().unwrap()))
            .unwrap();
        let done = act_after(&mut doc, &before, Some(AUTO_RULES), &postings);
        assert_eq!(done.relocated, Some(None));
        assert_eq!(done.returned, None);
        let view = doc.fold(&context());
        assert_eq!(view.status, Some(Status::Dispatched));
        assert_eq!(view.record.grid, None);
        assert_eq!(assignee(&doc).as_deref(), Some("u20"));
    }

    #[test]
    fn a_registered_case_that_becomes_urgent_is_dispatched_at_once() {
        let mut doc = report("E0102", Some(GRID), 0.0);
        let cast = cast();
        let context = context();
        doc.act(&context, &cast.acceptor, "h0", Action::Accept, at(2), None)
            .unwrap();
        doc.act(
            &context,
            &cast.shift_lead,
            "h1",
            Action::Register,
            at(2),
            None,
        )
        .unwrap();
        let before = heads(&doc);
        // A road collapse (E0401): the built-in rules dispatch emergencies at once.
        doc.set_category(&cast.acceptor, "E0401".parse().unwrap())
            .unwrap();
        let done = act_after(&mut doc, &before, None, &postings());
        assert_eq!(done.returned, None);
        assert_eq!(done.dispatched.unwrap().0.as_str(), "municipal_maintenance");
        assert_eq!(server_actions(&doc), [ActionName::Dispatch]);
        assert_eq!(doc.fold(&context).status, Some(Status::Dispatched));
    }

    #[test]
    fn an_overdue_case_goes_up_the_chain_once_per_step() {
        use crate::role::Level;
        // Dispatched automatically at minute 1; C0101's handling limit is short.
        let mut doc = report("C0101", Some(GRID), 0.0);
        run(&mut doc);
        let server = cast().server;
        let context = context();
        let view = doc.fold(&context);
        let due = view.current_step().unwrap().due_at.unwrap();
        // Not yet due: nothing.
        assert!(!escalate_overdue(&context, &mut doc, &server, due).unwrap());
        let late = due + chrono::TimeDelta::minutes(1);
        assert!(escalate_overdue(&context, &mut doc, &server, late).unwrap());
        let view = doc.fold(&context);
        assert_eq!(view.level, Level::District);
        assert_eq!(view.status, Some(Status::Registered), "back to dispatch");
        assert_eq!(view.counts.escalations, 1);
        // The new dispatch step is not overdue yet: once per step.
        assert!(!escalate_overdue(&context, &mut doc, &server, late).unwrap());
        // Left undispatched past that step's due time too: up to the city, then no more.
        let later = view.current_step().unwrap().due_at.unwrap() + chrono::TimeDelta::minutes(1);
        let mut server2 = cast().server;
        server2.device = format!("{:032x}", 99);
        assert!(escalate_overdue(&context, &mut doc, &server2, later).unwrap());
        let view = doc.fold(&context);
        assert_eq!(view.level, Level::City);
        let much_later = view.current_step().unwrap().due_at.unwrap() + chrono::TimeDelta::days(1);
        assert!(!escalate_overdue(&context, &mut doc, &server, much_later).unwrap());
    }
}
