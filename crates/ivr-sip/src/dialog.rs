//! Dialog state (RFC 3261 sec. 12): identifiers, route set, remote target,
//! CSeq spaces, and construction of requests within the dialog (sec. 12.2.1.1).
//!
//! UAS dialogs are built from the INVITE and our 2xx (sec. 12.1.1), UAC
//! dialogs from the INVITE we sent and the 2xx received (sec. 12.1.2). Only
//! loose routing (`;lr`, RFC 3261 sec. 16.12) is supported; a strict-routing
//! first hop is used as a loose one.

use std::net::{IpAddr, SocketAddr};

use crate::msg::{HeaderName as H, Host, Method, NameAddr, Request, Response, Uri};

/// The identifiers of a dialog (sec. 12: Call-ID, local tag, remote tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag (empty for an RFC 2543 peer that sent none).
    pub remote_tag: String,
}

/// A dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Identifiers.
    pub id: DialogId,
    /// Our URI (From of our requests), printed name-addr without tag.
    pub local_uri: String,
    /// The peer's URI (To of our requests), printed name-addr without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route set, in the order to put in Route headers.
    pub route_set: Vec<String>,
    /// Our last CSeq number.
    pub local_cseq: u32,
    /// The peer's last CSeq number.
    pub remote_cseq: Option<u32>,
}

fn strip_tag(n: &NameAddr) -> String {
    let mut n = n.clone();
    n.params.remove("tag");
    n.to_string()
}

/// The SIP socket address a URI designates, if its host is an IP literal
/// (RFC 3263 resolution of names is left to the owner).
pub fn uri_socket_addr(uri: &Uri) -> Option<SocketAddr> {
    let sip = uri.as_sip()?;
    let ip: IpAddr = match &sip.host {
        Host::V4(a) => IpAddr::V4(*a),
        Host::V6(a) => IpAddr::V6(*a),
        Host::Domain(d) => d.parse().ok()?,
    };
    let port = sip.port.unwrap_or(if sip.secure { 5061 } else { 5060 });
    Some(SocketAddr::new(ip, port))
}

impl Dialog {
    /// The UAS side of a dialog created by `invite` and answered with `local_tag`.
    pub fn new_uas(invite: &Request, local_tag: &str) -> Option<Dialog> {
        let from = invite.headers.from().ok()?;
        let to = invite.headers.to().ok()?;
        // RFC 2543 peers may omit Contact: the From URI is the target then (RFC 4475 `inv2543`).
        let target = match invite.headers.contact().ok().flatten() {
            Some(c) => c.uri,
            None => from.uri.clone(),
        };
        let route_set = invite
            .headers
            .get_all(&H::RecordRoute)
            .flat_map(|v| crate::msg::header::split_list(v, &H::RecordRoute).unwrap_or_default())
            .map(str::to_string)
            .collect();
        Some(Dialog {
            id: DialogId {
                call_id: invite.headers.call_id().ok()?.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: from.tag().unwrap_or("").to_string(),
            },
            local_uri: strip_tag(&to),
            remote_uri: strip_tag(&from),
            remote_target: target,
            route_set,
            local_cseq: 0,
            remote_cseq: invite.headers.cseq().ok().map(|c| c.seq),
        })
    }

    /// The UAC side of a dialog created by our `invite` and a 2xx `resp`.
    pub fn new_uac(invite: &Request, resp: &Response) -> Option<Dialog> {
        let from = invite.headers.from().ok()?;
        let to = resp.headers.to().ok()?;
        let target = match resp.headers.contact().ok().flatten() {
            Some(c) => c.uri,
            None => invite.uri.clone(),
        };
        let mut route_set: Vec<String> = resp
            .headers
            .get_all(&H::RecordRoute)
            .flat_map(|v| crate::msg::header::split_list(v, &H::RecordRoute).unwrap_or_default())
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            id: DialogId {
                call_id: invite.headers.call_id().ok()?.to_string(),
                local_tag: from.tag()?.to_string(),
                remote_tag: to.tag().unwrap_or("").to_string(),
            },
            local_uri: strip_tag(&from),
            remote_uri: strip_tag(&to),
            remote_target: target,
            route_set,
            local_cseq: invite.headers.cseq().ok()?.seq,
            remote_cseq: None,
        })
    }

    /// The dialog id of a request received within a dialog (To tag is ours).
    pub fn id_of_incoming(req: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: req.headers.call_id().ok()?.to_string(),
            local_tag: req.headers.to().ok()?.tag()?.to_string(),
            remote_tag: req.headers.from().ok()?.tag().unwrap_or("").to_string(),
        })
    }

    /// Where to send in-dialog requests: the first route, else the remote target.
    pub fn next_hop(&self) -> Option<SocketAddr> {
        match self.route_set.first() {
            Some(r) => {
                let na = NameAddr::parse(r, &H::Route).ok()?;
                uri_socket_addr(&na.uri)
            }
            None => uri_socket_addr(&self.remote_target),
        }
    }

    /// A request within the dialog (sec. 12.2.1.1). ACK and CANCEL reuse
    /// `cseq` as given; other methods take the next local CSeq.
    pub fn request(
        &mut self,
        method: Method,
        via: &str,
        contact: &str,
        cseq: Option<u32>,
    ) -> Request {
        let seq = match cseq {
            Some(s) => s,
            None => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        let mut r = Request::new(method.clone(), self.remote_target.clone());
        r.headers.push(H::Via, via);
        r.headers.push(H::MaxForwards, "70");
        r.headers.push(
            H::From,
            format!("{};tag={}", self.local_uri, self.id.local_tag),
        );
        if self.id.remote_tag.is_empty() {
            r.headers.push(H::To, self.remote_uri.clone());
        } else {
            r.headers.push(
                H::To,
                format!("{};tag={}", self.remote_uri, self.id.remote_tag),
            );
        }
        r.headers.push(H::CallId, self.id.call_id.clone());
        r.headers.push(H::CSeq, format!("{seq} {method}"));
        for route in &self.route_set {
            r.headers.push(H::Route, route.clone());
        }
        if !matches!(method, Method::Ack | Method::Cancel | Method::Bye) {
            r.headers.push(H::Contact, contact);
        }
        r
    }
}
