//! `/search` and `/history around N`: the node's side of searching the local history. It
//! checks who searches and where they may look (the rooms they are a member of now, their own
//! conversations), resolves the names in the query, runs the search on the store worker, numbers
//! the results and keeps them as the user's last search ([`LastSearch`]).
//!
//! It never reads the index itself (the store does, `store/search.rs`), nor parses what was
//! typed (`search.rs` does).

use std::collections::HashMap;

use super::CommandError;
use super::client::RoomReply;
use super::direct::{internal, view};
use super::event::{ErrorCode, SearchResult, UiEvent};
use super::parts::EventLoop;
use super::state::rooms::{RoomDone, error, message_view};
use super::state::search::{AROUND, Hit, LastSearch, MAX_NUMBERED, ResultAt, Scored, page};
use super::state::store::Done;
use crate::account::AccountId;
use crate::room::EventId;
use crate::search::{PAGE, Scope, SearchLine, SearchQuery, matched_ranges};
use crate::store::NodeStore;

/// A search as the loop hands it to the store worker: every name already resolved.
struct Plan {
    me: AccountId,
    fts: String,
    /// The rooms searched, with their labels.
    rooms: HashMap<EventId, String>,
    /// Whether direct messages are searched, and with whom only.
    dms: Option<Option<AccountId>>,
    from: Option<AccountId>,
    offset: usize,
}

impl EventLoop {
    /// `/search`: answered once the store worker has searched.
    pub(super) fn search(&mut self, line: SearchLine, reply: RoomDone) {
        match self.plan_search(line) {
            Ok((query, plan)) => self.store.run(move |store| {
                let offset = plan.offset;
                let page = run(store, &plan);
                Some(Done::Searched { reply, query, offset, page })
            }),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// What the search of `line` looks for, and where.
    fn plan_search(&self, line: SearchLine) -> Result<(SearchQuery, Plan), CommandError> {
        let me = self.my_account()?;
        let last = self.last_search.as_ref().filter(|last| last.owner == me);
        let (query, offset) = match (line.query, line.more, last) {
            (None, _, Some(last)) => (last.query.clone(), last.numbered.len()),
            (None, _, None) => {
                return Err(error(ErrorCode::Usage, "nothing to show more of: /search WORDS first"));
            }
            (Some(query), true, Some(last)) if last.query == query => (query, last.numbered.len()),
            (Some(query), _, _) => (query, 0),
        };
        if offset >= MAX_NUMBERED {
            let why = format!("a search shows at most {MAX_NUMBERED} results: say more of what you look for");
            return Err(error(ErrorCode::Usage, why));
        }
        let (rooms, dms) = match &query.scope {
            None => (self.my_rooms().into_iter().map(|r| r.id).collect(), Some(None)),
            Some(Scope::Room(name)) => {
                let room = self.resolve_room(name)?;
                if !self.rooms.engine.state(&room).is_some_and(|s| s.is_member(&me)) {
                    let label = self.room_label(&room);
                    return Err(error(ErrorCode::NotMember, format!("you are not a member of #{label}")));
                }
                (vec![room], None)
            }
            Some(Scope::User(name)) => (Vec::new(), Some(Some(self.known_user(name)?))),
        };
        let from = query.from.as_deref().map(|name| self.known_user(name)).transpose()?;
        let rooms = rooms.into_iter().map(|room| (room, self.room_label(&room))).collect();
        let plan = Plan { me, fts: query.fts_match(), rooms, dms, from, offset };
        Ok((query, plan))
    }

    /// The account known here by `name`.
    fn known_user(&self, name: &str) -> Result<AccountId, CommandError> {
        let name = name.trim_start_matches('@');
        self.accounts
            .known_account(name)
            .ok_or_else(|| error(ErrorCode::NoSuchUser, format!("no one called {name} is known here")))
    }

    /// The store worker searched: the results are numbered and kept as the last search.
    pub(super) fn searched(
        &mut self,
        reply: RoomDone,
        query: SearchQuery,
        offset: usize,
        page: Result<(Vec<Hit>, bool), CommandError>,
    ) {
        let (hits, more) = match page {
            Ok(page) => page,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let Ok(me) = self.my_account() else {
            let _ = reply.send(Err(error(ErrorCode::NotLoggedIn, "logged out meanwhile")));
            return;
        };
        let mut last = match self.last_search.take() {
            Some(last) if offset > 0 && last.owner == me && last.query == query => last,
            _ => LastSearch { owner: me, query: query.clone(), numbered: Vec::new() },
        };
        last.numbered.truncate(offset);
        let first = last.numbered.len() + 1;
        let mut results = Vec::with_capacity(hits.len());
        for (i, hit) in hits.into_iter().enumerate() {
            last.numbered.push(hit.at);
            results.push(SearchResult { n: first + i, found: hit.found, matches: hit.matches });
        }
        self.last_search = Some(last);
        let _ = reply.send(Ok(RoomReply::Search { query: query.to_string(), results, more }));
    }

    /// `/history around N`: the messages around result `N` of the last search.
    pub(super) fn history_around(&self, n: usize, reply: RoomDone) {
        let answer = self.my_account().and_then(|me| {
            let last = self.last_search.as_ref().filter(|last| last.owner == me);
            let shown = last.map_or(0, |last| last.numbered.len());
            let at = last.and_then(|last| last.result(&me, n)).ok_or_else(|| {
                let why = match shown {
                    0 => format!("there is no search result {n}: /search WORDS first"),
                    shown => format!("there is no search result {n}; the last search showed 1 to {shown}"),
                };
                error(ErrorCode::Usage, why)
            })?;
            Ok((me, at.clone()))
        });
        let (me, at) = match answer {
            Ok(found) => found,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        match at {
            ResultAt::Room { room, id } => {
                let label = self.room_label(&room);
                if !self.rooms.engine.state(&room).is_some_and(|s| s.is_member(&me)) {
                    let why = format!("you are no longer a member of #{label}");
                    let _ = reply.send(Err(error(ErrorCode::NotMember, why)));
                    return;
                }
                self.store.run(move |store| {
                    let answer = store.messages_around(&room, &id, AROUND).map_err(internal).map(|messages| {
                        let messages =
                            messages.iter().map(|m| UiEvent::Message(message_view(m, label.clone()))).collect();
                        RoomReply::History { target: format!("#{label}"), messages }
                    });
                    Some(Done::Reply { reply, answer })
                });
            }
            ResultAt::Dm { other, id } => {
                let target = format!("@{}", self.accounts.name_of(&other));
                self.store.run(move |store| {
                    let answer = store.dms_around(&me, &other, &id, AROUND).map_err(internal).map(|dms| {
                        RoomReply::History { target, messages: dms.iter().map(|d| UiEvent::Dm(view(d))).collect() }
                    });
                    Some(Done::Reply { reply, answer })
                });
            }
        }
    }
}

/// Runs `plan` on the store: one page of results, and whether more follow.
fn run(store: &NodeStore, plan: &Plan) -> Result<(Vec<Hit>, bool), CommandError> {
    let limit = plan.offset.saturating_add(PAGE + 1);
    let mut found = Vec::new();
    if !plan.rooms.is_empty() {
        let rooms: Vec<EventId> = plan.rooms.keys().copied().collect();
        for hit in store.search_messages(&plan.fts, &rooms, plan.from.as_ref(), limit).map_err(internal)? {
            let message = hit.item;
            let label = plan.rooms.get(&message.room).cloned().unwrap_or_default();
            let item = Hit {
                at: ResultAt::Room { room: message.room, id: message.id },
                matches: matched_ranges(&hit.marked, &message.text),
                found: UiEvent::Message(message_view(&message, label)),
            };
            found.push(Scored { score: hit.score, ts_ms: message.ts_ms, item });
        }
    }
    if let Some(other) = &plan.dms {
        let hits =
            store.search_dms(&plan.fts, &plan.me, other.as_ref(), plan.from.as_ref(), limit).map_err(internal)?;
        for hit in hits {
            let dm = hit.item;
            let item = Hit {
                at: ResultAt::Dm { other: dm.other, id: dm.id.clone() },
                matches: matched_ranges(&hit.marked, &dm.text),
                found: UiEvent::Dm(view(&dm)),
            };
            found.push(Scored { score: hit.score, ts_ms: dm.ts_ms, item });
        }
    }
    Ok(page(found, plan.offset))
}
