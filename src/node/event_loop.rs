//! The event loop that owns the Swarm: it `select!`s over swarm events, requests from clients, the
//! re-dial timer and the `ready` timer, and reports what users should see as [`UiEvent`]s. Each
//! handler runs to its end; none re-enters another. What the store worker gave back comes in as
//! an input of its own ([`Written`]). It keeps `run`, the dispatch of swarm events, requests and
//! what the store worker gave back to the adapters, the connections, discovery and re-dialling,
//! `/status` and `ready`; it never touches the database.
//!
//! The [`EventLoop`] struct and how it is built are `node/parts.rs`'s, the state of each part is
//! `node/state/`'s, and each part's work is its adapter's (the other `impl EventLoop` files),
//! reached through `self`: this file imports none of them, and none of them imports this file.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::request_response::{self, Message};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, gossipsub, identify, mdns, ping};
use tokio::sync::oneshot;

use super::READY_SETTLE;
use super::attention::Place;
use super::client::Request;
use super::event::{PeerState, Status, UiEvent};
use super::liveness::DEAD_AFTER;
use super::parts::{EventLoop, Readiness};
use super::state::store::{Done, Written};
use crate::net::redial::{DialKey, at_same_host, is_loopback};
use crate::net::{BehaviourEvent, MDNS_MAX_RECORDS, mdns_behaviour};
use crate::protocol::peers::{self, PeersRequest, PeersResponse};

/// How often the re-dial policy is asked for due dials.
const REDIAL_TICK: Duration = Duration::from_millis(100);
/// A new peer is asked whom it knows at once and again this much later: at once it may not have
/// heard yet the addresses of a peer that connected to it at the same moment.
const PEER_EXCHANGE_FOLLOW_UP: Duration = Duration::from_secs(2);
/// Besides asking every new peer, ask one connected peer this often whom it knows.
const PEER_EXCHANGE_INTERVAL: Duration = Duration::from_secs(15);
/// How long a node that is asked to stop still waits for its letters to reach a mailbox.
const LETTERS_AT_QUIT: Duration = Duration::from_secs(3);

impl EventLoop {
    pub(super) async fn run(mut self) {
        let mut redial_tick = tokio::time::interval(REDIAL_TICK);
        redial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut exchange_tick = tokio::time::interval(PEER_EXCHANGE_INTERVAL);
        exchange_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let first_heartbeat = tokio::time::Instant::now() + super::state::presence::heartbeat_phase();
        let mut presence_tick = tokio::time::interval_at(first_heartbeat, super::state::presence::PRESENCE_INTERVAL);
        presence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut resync_tick = tokio::time::interval(super::state::rooms::RESYNC_INTERVAL);
        resync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        self.load_rooms();
        self.load_direct();
        self.load_keys();
        self.resume_session().await;
        let mut shutdown_reply: Option<oneshot::Sender<()>> = None;
        loop {
            let settle = match self.readiness {
                Readiness::Settling(at) => Some(at),
                _ => None,
            };
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                request = self.requests.recv() => match request {
                    None => break,
                    Some(Request::Shutdown { reply }) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(request) => self.on_request(request).await,
                },
                _ = redial_tick.tick() => {
                    self.close_dead_connections();
                    self.follow_up_exchanges();
                    self.presence_due().await;
                    self.room_tick().await;
                    self.dial_due().await;
                    self.reach_due().await;
                    self.expire_waiting_for_bootstrap().await;
                }
                _ = presence_tick.tick() => {
                    self.presence_heartbeat().await;
                    self.renew_if_due().await;
                    self.pump_all_outboxes().await;
                    self.expire_letters();
                    self.collect_left_letters();
                }
                Some((ticket, answer)) = self.auth_answers.recv() => self.on_worker_answer(ticket, answer).await,
                Some(done) = self.serving.done.recv() => self.on_read_done(done),
                Some(written) = self.written.recv() => self.on_written(written).await,
                _ = exchange_tick.tick() => self.ask_a_random_peer_for_peers(),
                _ = resync_tick.tick() => self.resync_rooms(),
                _ = sleep_until(settle) => self.send_ready().await,
            }
            self.tell_focus_again().await;
        }
        self.finish_letters().await;
        // Dropping the swarm closes every connection; peers see it at once. What was queued to
        // the store is written before the front-end hears the node has stopped (it may exit at
        // once): the worker ends once every handle to it is dropped and its jobs are done.
        let (_, closed) = tokio::sync::mpsc::unbounded_channel();
        let mut written = std::mem::replace(&mut self.written, closed);
        // The front-end's channel stays open until it has its answer.
        let events = self.events.clone();
        drop(self);
        while written.recv().await.is_some() {}
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
        drop(events);
    }

    /// After `/quit`: a message to someone offline that is still being kept, or whose letter is
    /// on its way to a mailbox, gets up to [`LETTERS_AT_QUIT`] to be left there before the
    /// connections close (writing to someone offline and quitting at once is the case the
    /// mailbox is for). Nothing new is taken from the front-end meanwhile.
    async fn finish_letters(&mut self) {
        let until = tokio::time::Instant::now() + LETTERS_AT_QUIT;
        while self.mailboxes.leaving() || self.direct.engine.keeping() {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                Some(written) = self.written.recv() => self.on_written(written).await,
                _ = tokio::time::sleep_until(until) => break,
            }
        }
    }

    /// What the store worker's jobs gave back, each taken in order.
    async fn on_written(&mut self, written: Written) {
        if !written.committed {
            tracing::error!(jobs = written.dones.len(), "what the store was given was not committed");
        }
        for done in written.dones {
            match done {
                Done::Failed(why) => self.emit(UiEvent::info(why)).await,
                Done::Message { taken, new } => self.message_kept(*taken, new).await,
                Done::FirstPage { peer, paging, join } => self.request_page(peer, *paging, join.map(|join| *join)),
                Done::PageKept { peer, room, join, ended } => self.page_kept(peer, room, join, ended).await,
                Done::Reply { reply, answer } => {
                    let _ = reply.send(answer);
                }
                Done::Committed { ticket } => self.serve_committed(ticket),
                Done::SessionSaved(held) => self.session_saved(held).await,
                Done::Searched { reply, query, offset, page } => self.searched(reply, query, offset, page),
                Done::MailboxAnswer { channel, response } => self.answer_mailbox(channel, response),
                Done::Sealed { room, session, rows } => self.open_read(room, session, rows).await,
                // A message whose transaction was not committed is not kept: no receipt says so.
                Done::DmKept { id, error } => {
                    let error = error.or_else(|| (!written.committed).then(|| "it was not committed".to_string()));
                    self.dm_kept(id, error).await;
                }
                Done::DmKeptReceived { channel, ok, known, sender, seq, id } => {
                    self.dm_kept_received(channel, ok && written.committed, known, sender, seq, id).await;
                }
                Done::DmOldest { to, dm } => self.dm_oldest(to, dm).await,
                Done::DmWaiting(waiting) => self.dm_waiting(waiting).await,
                Done::DmSeen(received) => self.dm_seen(*received).await,
            }
        }
    }

    /// When the focused room or user goes by another name now (a namesake room appeared, the
    /// user renamed), the front-end hears the focus again, by that name.
    async fn tell_focus_again(&mut self) {
        let target = match self.attention.route_text() {
            None => return,
            Some(Place::Room(room)) => format!("#{}", self.room_label(&room)),
            Some(Place::User(account)) => format!("@{}", self.accounts.name_of(&account)),
        };
        if let Some(target) = self.attention.relabel(target) {
            self.emit(UiEvent::Focus { target }).await;
        }
    }

    /// Reports `event`; `ready` is always the first event a node reports.
    pub(super) async fn emit(&mut self, event: UiEvent) {
        if self.readiness != Readiness::Ready {
            self.before_ready.push(event);
            return;
        }
        // The front-end may already be gone while the node shuts down; nothing to tell then.
        let _ = self.events.send(event).await;
    }

    async fn on_request(&mut self, request: Request) {
        match request {
            Request::Status { reply } => self.status_with_outbox(self.status(), reply),
            Request::Account { request, reply } => self.account_request(request, reply).await,
            Request::Logout { reply } => self.logout(reply).await,
            Request::Trust { key, reply } => {
                let result = self.trust_bootstrap(&key).await;
                let _ = reply.send(result);
            }
            Request::Nick { nick, reply } => self.change_nick(nick, reply).await,
            Request::Who { reply } => {
                let _ = reply.send(Ok(self.who()));
            }
            Request::Room { command, reply } => self.room_command(command, reply).await,
            Request::Direct { command, reply } => self.direct_command(command, reply).await,
            Request::Shutdown { .. } => unreachable!("handled by the loop"),
        }
    }

    fn status(&self) -> Status {
        let connections = self.connections();
        let peers = connections.iter().map(|c| c.peer_id.clone()).collect();
        Status {
            peer_id: self.swarm.local_peer_id().to_string(),
            user: self.accounts.username().map(str::to_string),
            peers,
            bootstrap: self.accounts.bootstrap_peer().map(|p| p.to_string()),
            rooms: self.my_room_labels(),
            encryption: self.my_rooms_encryption(),
            // Counted by the store worker before the answer goes.
            outbox: 0,
            certificate_expires_in: self.accounts.session().map(|s| s.certificate.remaining(crate::clock::unix_now())),
            problems: self.problems(),
            listen: self.listen_addrs.iter().map(Multiaddr::to_string).collect(),
            connections,
            reachability: self.reach.nat,
            relay: self.reach.reserved_at().map(|p| p.to_string()),
        }
    }

    /// What is wrong, for `/status`.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.swarm.connected_peers().next().is_none() {
            problems.push("no peer connected: no other node found yet (mDNS, or --peer); retrying".to_string());
        }
        if let Some(key) = self.accounts.unconfirmed_keys().first() {
            problems.push(format!(
                "a bootstrap node is in reach with key {}, not confirmed: compare it with the key the bootstrap node printed, then /trust KEY",
                crate::pinned_key::grouped(&key.to_hex())
            ));
        } else if self.accounts.bootstrap_peer().is_none() {
            problems.push(
                "no bootstrap node in reach: chat goes on; logins, registrations and renames wait for it".to_string(),
            );
        }
        if let Some(session) = self.accounts.session() {
            let left = session.certificate.remaining(crate::clock::unix_now());
            if crate::session::renewal_due(left, session.certificate.lifetime())
                && self.accounts.bootstrap_peer().is_none()
            {
                problems.push(format!(
                    "your certificate runs out in {} min and cannot be renewed until a bootstrap node is in reach",
                    left / 60
                ));
            }
        }
        problems
    }

    async fn send_ready(&mut self) {
        self.readiness = Readiness::Ready;
        let event = UiEvent::Ready {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen: self.listen_addrs.iter().map(Multiaddr::to_string).collect(),
            authority_key: self.accounts.hosted_authority().map(|k| k.to_hex()),
        };
        self.emit(event).await;
        for event in std::mem::take(&mut self.before_ready) {
            self.emit(event).await;
        }
    }

    fn listener_reported(&mut self, id: ListenerId) {
        if let Some(reported) = self.listeners.get_mut(&id) {
            *reported = true;
        }
        if self.readiness == Readiness::Listening && self.listeners.values().all(|r| *r) {
            self.readiness = Readiness::Settling(tokio::time::Instant::now() + READY_SETTLE);
        }
    }

    pub(super) async fn dial_due(&mut self) {
        let now = Instant::now();
        for plan in self.redial.due(now) {
            let opts = match plan.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(plan.addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .allocate_new_port()
                    .build(),
                None => {
                    let Some(addr) = plan.addrs.into_iter().next() else {
                        continue;
                    };
                    DialOpts::unknown_peer_id().address(addr).allocate_new_port().build()
                }
            };
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => self.redial.dial_started(plan.key, id),
                Err(error) => {
                    tracing::debug!(?plan.key, %error, "dial not started");
                    self.redial.dial_not_started(&plan.key, now);
                }
            }
        }
    }

    fn close_dead_connections(&mut self) {
        for id in self.liveness.take_dead(Instant::now()) {
            tracing::debug!(?id, "no ping answered nor message heard for {DEAD_AFTER:?}; closing the connection");
            self.swarm.close_connection(id);
        }
    }

    fn follow_up_exchanges(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.exchange_follow_ups.drain(..).partition(|(at, _)| *at <= now);
        self.exchange_follow_ups = later;
        for (_, peer) in due {
            if self.swarm.is_connected(&peer) {
                self.swarm.behaviour_mut().peers.send_request(&peer, PeersRequest::default());
            }
        }
    }

    fn ask_a_random_peer_for_peers(&mut self) {
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if connected.is_empty() {
            return;
        }
        let peer = connected[rand::random_range(0..connected.len())];
        self.swarm.behaviour_mut().peers.send_request(&peer, PeersRequest::default());
    }

    /// Whether an address a peer told us about over `connection` is worth dialling: loopback
    /// addresses only when that peer itself is reached over loopback.
    fn usable_address(&self, connection: ConnectionId, addr: &Multiaddr) -> bool {
        !is_loopback(addr) || self.remotes.get(&connection).is_some_and(is_loopback)
    }

    /// Starts mDNS afresh when it holds more than [`MDNS_MAX_RECORDS`] pairs of peer and
    /// address (some host on the LAN answering with made-up peers): what it held goes, the
    /// peers worth dialling stay in the redialer, and real peers answer the next query.
    fn bound_mdns(&mut self) {
        let held = self.swarm.behaviour().mdns.as_ref().map_or(0, |mdns| mdns.discovered_nodes().len());
        if held <= MDNS_MAX_RECORDS {
            return;
        }
        tracing::warn!(held, "mDNS holds more peers than a LAN has; starting it afresh");
        match mdns_behaviour(*self.swarm.local_peer_id()) {
            Ok(fresh) => self.swarm.behaviour_mut().mdns = Some(fresh).into(),
            Err(error) => tracing::error!(%error, "cannot start mDNS afresh"),
        }
    }

    async fn on_peer_exchange(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        message: Message<PeersRequest, PeersResponse>,
    ) {
        match message {
            Message::Request { channel, .. } => {
                let answer = PeersResponse::new(self.redial.peer_addresses(&peer, peers::MAX_PEERS));
                if self.swarm.behaviour_mut().peers.send_response(channel, answer).is_err() {
                    tracing::debug!(%peer, "peer left before the peer-exchange answer");
                }
            }
            Message::Response { response, .. } => {
                let told: Vec<(PeerId, Multiaddr)> = response
                    .decode()
                    .into_iter()
                    .flat_map(|(other, addrs)| addrs.into_iter().map(move |addr| (other, addr)))
                    .filter(|(_, addr)| self.usable_address(connection, addr))
                    .collect();
                self.redial.add_hearsay(peer, told, Instant::now());
                self.dial_due().await;
            }
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                tracing::debug!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
                self.listener_reported(listener_id);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(%error, "listener error");
                self.listener_reported(listener_id);
            }
            SwarmEvent::ListenerClosed { listener_id, addresses, reason } => {
                self.listen_addrs.retain(|a| !addresses.contains(a));
                if self.reach_listener_closed(listener_id) {
                    tracing::debug!(?reason, "circuit listener closed");
                } else if let Err(error) = reason {
                    self.emit(UiEvent::info(format!("stopped listening on {addresses:?}: {error}"))).await;
                }
                self.listener_reported(listener_id);
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connection established");
                self.remotes.insert(connection_id, endpoint.get_remote_address().clone());
                self.liveness.opened(connection_id, peer_id, Instant::now());
                self.redial.connection_established(connection_id, peer_id);
                self.reach_connection_opened(peer_id, connection_id, endpoint.is_relayed()).await;
                if num_established.get() == 1 {
                    self.swarm.behaviour_mut().peers.send_request(&peer_id, PeersRequest::default());
                    self.exchange_follow_ups.push((Instant::now() + PEER_EXCHANGE_FOLLOW_UP, peer_id));
                    self.emit(UiEvent::Peer { peer_id: peer_id.to_string(), state: PeerState::Connected }).await;
                    self.catch_up_from(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, cause, .. } => {
                tracing::debug!(%peer_id, ?cause, "connection closed");
                self.remotes.remove(&connection_id);
                self.liveness.closed(connection_id);
                self.redial.connection_closed(peer_id, num_established, Instant::now());
                self.reach_connection_closed(peer_id, connection_id, num_established == 0);
                if num_established == 0 {
                    self.emit(UiEvent::Peer { peer_id: peer_id.to_string(), state: PeerState::Disconnected }).await;
                    self.bootstrap_gone(peer_id).await;
                    self.presence_peer_gone(peer_id).await;
                    self.mailbox_gone(&peer_id);
                } else {
                    // Room messages still queued on the closed connection (a link that went
                    // silent, closed once a new connection replaced it) are lost with it: they
                    // are caught up over a connection that remains.
                    self.catch_up_from(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                tracing::debug!(?peer_id, %error, "dial failed");
                if let Some((DialKey::Configured(_), 1)) = self.redial.dial_failed(connection_id, Instant::now()) {
                    self.emit(UiEvent::info(format!("cannot reach peer yet ({error}); retrying"))).await;
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event).await,
            _ => {}
        }
    }

    async fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        let now = Instant::now();
        match event {
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.redial.add_address(peer, addr, now);
                }
                self.bound_mdns();
                // Dial at once rather than at the next tick: discovery should be fast.
                self.dial_due().await;
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(gone)) => {
                for (peer, addr) in gone {
                    self.redial.remove_address(&peer, &addr);
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, connection_id, info }) => {
                self.consider_bootstrap(peer_id, &info).await;
                self.consider_relay(peer_id, connection_id, &info).await;
                if info.protocols.iter().any(|p| p.as_ref() == crate::protocol::mailbox::PROTOCOL) {
                    self.mailbox_offered(peer_id);
                }
                // A peer's word on where it listens, taken only at the host it is reached at.
                let remote = self.remotes.get(&connection_id).cloned();
                for addr in info.listen_addrs {
                    if self.usable_address(connection_id, &addr)
                        && remote.as_ref().is_some_and(|remote| at_same_host(remote, &addr))
                    {
                        self.redial.add_address(peer_id, addr, now);
                    }
                }
            }
            BehaviourEvent::Peers(request_response::Event::Message { peer, connection_id, message }) => {
                self.on_peer_exchange(peer, connection_id, message).await;
            }
            BehaviourEvent::Ping(ping::Event { connection, result: Ok(_), .. }) => {
                if let Some(peer) = self.liveness.pinged(connection, now) {
                    // A link kept through a silence (a cable pulled and plugged back within the
                    // busy grace) is as good as a reconnection: what the peer wrote meanwhile
                    // never came, and is caught up now.
                    tracing::debug!(%peer, "a connection silent for a while answers again; catching up");
                    self.catch_up_from(peer);
                }
            }
            BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(error) }) => {
                if self.liveness.busy(connection, now) {
                    tracing::debug!(%peer, %error, "ping failed on a connection busy with messages; kept");
                } else {
                    tracing::debug!(%peer, %error, "ping failed; closing the connection");
                    self.liveness.closed(connection);
                    self.swarm.close_connection(connection);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                self.liveness.heard_from(propagation_source, now);
                let acceptance = if message.topic == self.presence.topic_hash() {
                    Some(self.on_presence_message(&message.data).await)
                } else if let Some(room) = self.rooms.room_of_topic(&message.topic) {
                    let gossip = (message_id.clone(), propagation_source);
                    self.on_room_gossip(room, &message.data, gossip).await
                } else {
                    tracing::debug!(topic = %message.topic, "message on an unknown topic ignored");
                    Some(gossipsub::MessageAcceptance::Ignore)
                };
                // None: the store decides (a late message, passed on once known to be new).
                if let Some(acceptance) = acceptance {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        acceptance,
                    );
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { topic, .. }) => {
                if topic == self.presence.topic_hash() {
                    // A newcomer: tell it who is here without waiting for the next heartbeat.
                    self.presence_newcomer().await;
                } else {
                    self.room_subscriber(&topic);
                }
            }
            BehaviourEvent::Auth(request_response::Event::Message { peer, connection_id, message }) => match message {
                Message::Request { request, channel, .. } => {
                    self.on_auth_request(peer, connection_id, request, channel);
                }
                Message::Response { request_id, response } => self.on_auth_response(request_id, response).await,
            },
            BehaviourEvent::Auth(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                self.on_auth_failure(request_id, error.to_string()).await;
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => match message {
                Message::Request { request, channel, .. } => self.on_sync_request(peer, request, channel).await,
                Message::Response { request_id, response } => {
                    self.on_sync_response(peer, request_id, response).await;
                }
            },
            BehaviourEvent::Sync(request_response::Event::OutboundFailure { peer, request_id, error, .. }) => {
                self.on_sync_failure(peer, request_id, error.to_string()).await;
            }
            BehaviourEvent::Dm(request_response::Event::Message { peer, message, .. }) => match message {
                Message::Request { request, channel, .. } => self.on_dm_request(peer, request, channel).await,
                Message::Response { request_id, response } => self.on_dm_response(request_id, response).await,
            },
            BehaviourEvent::Keys(request_response::Event::Message { peer, message, .. }) => match message {
                Message::Request { request, channel, .. } => self.on_keys_request(peer, request, channel),
                Message::Response { request_id, response } => self.on_keys_response(peer, request_id, response),
            },
            BehaviourEvent::Keys(request_response::Event::OutboundFailure { peer, request_id, error, .. }) => {
                self.on_keys_failure(peer, request_id, error.to_string());
            }
            BehaviourEvent::Dm(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                self.on_dm_failure(request_id, error.to_string()).await;
            }
            BehaviourEvent::Mailbox(request_response::Event::Message { peer, message, .. }) => match message {
                Message::Request { request, channel, .. } => self.on_mailbox_request(peer, request, channel),
                Message::Response { request_id, response } => self.on_mailbox_response(request_id, response).await,
            },
            BehaviourEvent::Mailbox(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                self.on_mailbox_failure(request_id, &error);
            }
            BehaviourEvent::RelayClient(event) => self.on_relay_client(event).await,
            BehaviourEvent::Autonat(event) => self.on_autonat(event).await,
            BehaviourEvent::Rendezvous(event) => self.on_rendezvous(event).await,
            BehaviourEvent::Dcutr(event) => self.on_dcutr(event),
            BehaviourEvent::Relay(event) => tracing::debug!(?event, "relay"),
            BehaviourEvent::RendezvousPoint(event) => tracing::debug!(?event, "rendezvous point"),
            _ => {}
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
