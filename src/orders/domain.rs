//! The order's state machine, as a pure function: [`apply`] takes the state and an event and
//! answers the next state and the effects to carry out, or refuses the event. Nothing here
//! touches the database, so every path is unit-tested below.
//!
//! ## Two processes side by side
//! An order has two processes, one after the other: the fan pays ([`Payment`]), then the
//! store's vendor receives, accepts and makes the order ([`Vendor`]). The state is the pair plus a `cancelled` flag; the [`Status`] the customer
//! sees is derived from it ([`OrderState::status`]), so it can never disagree with its parts.
//!
//! ## Rules a newcomer must know
//! - **Every event may arrive twice, late or out of order** (queued messages, webhooks). An
//!   event that changes nothing is a no-op ([`Transition::changed`] false), never an error:
//!   a stale `preparing` after `ready` is ignored; a second `paid` is ignored.
//! - **Stock is held** from placing until the order is cancelled or its payment fails; the
//!   transition that lets go of it emits [`Effect::ReleaseStock`], exactly once.
//! - **Money taken is always given back if the order will not be made**: a payment that
//!   succeeds on a cancelled order, or a cancellation of a paid order, moves the payment to
//!   `refunding` and emits [`Effect::Refund`] (compensation).
//! - **The kitchen never starts before the money is in**: the order goes to the vendor only
//!   when its payment is `paid` (the transition emits [`Effect::HandOver`], once), and vendor
//!   progress on an unpaid order is refused. So the payment deadline, which cancels only
//!   unpaid orders, can never cancel (and put back the stock of) food already made or handed
//!   over, and the vendor's acceptance deadline runs from the payment, not from placing.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::vendor::VendorProgress;

/// What the customer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for payment (the vendor does not have it yet).
    Placed,
    /// Paid; the vendor has not accepted yet.
    Paid,
    Accepted,
    Preparing,
    Ready,
    PickedUp,
    /// The gateway declined the payment; stock was released.
    PaymentFailed,
    /// Will not be made (vendor rejected or never accepted, or never paid); nothing was
    /// charged, or a refund is under way.
    Cancelled,
    /// Cancelled after the money was taken, and the money was given back.
    Refunded,
}

/// The payment process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    Unpaid,
    /// A charge was sent to the gateway and its outcome is not known yet.
    Charging,
    Paid,
    Failed,
    Refunding,
    Refunded,
}

/// The vendor process: how far the store's own system has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    /// Not handed over yet.
    Pending,
    /// The vendor has it and has not decided.
    Sent,
    Accepted,
    Preparing,
    Ready,
    PickedUp,
    Rejected,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($ty::$variant),)* _ => None }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(Status {
    Placed = "placed",
    Paid = "paid",
    Accepted = "accepted",
    Preparing = "preparing",
    Ready = "ready",
    PickedUp = "picked_up",
    PaymentFailed = "payment_failed",
    Cancelled = "cancelled",
    Refunded = "refunded",
});
text_enum!(Payment {
    Unpaid = "unpaid",
    Charging = "charging",
    Paid = "paid",
    Failed = "failed",
    Refunding = "refunding",
    Refunded = "refunded",
});
text_enum!(Vendor {
    Pending = "pending",
    Sent = "sent",
    Accepted = "accepted",
    Preparing = "preparing",
    Ready = "ready",
    PickedUp = "picked_up",
    Rejected = "rejected",
});

/// An order's state: the two processes and whether the order was called off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderState {
    pub payment: Payment,
    pub vendor: Vendor,
    pub cancelled: bool,
}

impl OrderState {
    /// A newly placed order.
    pub const PLACED: OrderState = OrderState {
        payment: Payment::Unpaid,
        vendor: Vendor::Pending,
        cancelled: false,
    };

    pub fn status(&self) -> Status {
        if self.cancelled {
            return if self.payment == Payment::Refunded {
                Status::Refunded
            } else {
                Status::Cancelled
            };
        }
        match self.payment {
            Payment::Failed => Status::PaymentFailed,
            Payment::Unpaid | Payment::Charging => Status::Placed,
            Payment::Paid | Payment::Refunding | Payment::Refunded => match self.vendor {
                Vendor::Accepted => Status::Accepted,
                Vendor::Preparing => Status::Preparing,
                Vendor::Ready => Status::Ready,
                Vendor::PickedUp => Status::PickedUp,
                Vendor::Pending | Vendor::Sent | Vendor::Rejected => Status::Paid,
            },
        }
    }

    /// Whether the order's items are still set aside for it.
    pub fn holds_stock(&self) -> bool {
        !self.cancelled && self.payment != Payment::Failed
    }

    /// Nothing more will happen: no money is in flight and the vendor is done with it.
    pub fn is_terminal(&self) -> bool {
        match self.status() {
            Status::PickedUp | Status::PaymentFailed | Status::Refunded => true,
            Status::Cancelled => matches!(self.payment, Payment::Unpaid | Payment::Failed),
            _ => false,
        }
    }

    /// Whether the vendor may be working on the order (so a cancellation must tell it).
    fn vendor_has_it(&self) -> bool {
        matches!(
            self.vendor,
            Vendor::Sent | Vendor::Accepted | Vendor::Preparing
        )
    }
}

/// Something that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The customer asked to pay; a charge is about to go to the gateway.
    ChargeStarted,
    ChargeSucceeded {
        reference: String,
    },
    ChargeDeclined {
        reason: String,
    },
    /// The vendor's system has the order.
    VendorReceived {
        vendor_ref: String,
    },
    /// A webhook from the vendor (or its refusal at hand-over).
    Vendor {
        progress: VendorProgress,
        reason: Option<String>,
    },
    /// The vendor did not accept within the deadline.
    VendorDeadlinePassed,
    /// The customer did not pay within the payment window.
    PaymentDeadlinePassed,
    RefundSucceeded {
        reference: String,
    },
}

impl Event {
    /// The name recorded in the order's history.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ChargeStarted => "charge_started",
            Event::ChargeSucceeded { .. } => "charge_succeeded",
            Event::ChargeDeclined { .. } => "charge_declined",
            Event::VendorReceived { .. } => "vendor_received",
            Event::Vendor { progress, .. } => match progress {
                VendorProgress::Accepted => "vendor_accepted",
                VendorProgress::Rejected => "vendor_rejected",
                VendorProgress::Preparing => "vendor_preparing",
                VendorProgress::Ready => "vendor_ready",
                VendorProgress::PickedUp => "vendor_picked_up",
            },
            Event::VendorDeadlinePassed => "vendor_deadline_passed",
            Event::PaymentDeadlinePassed => "payment_deadline_passed",
            Event::RefundSucceeded { .. } => "refund_succeeded",
        }
    }

    /// A detail for the history: a reason or a reference.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Event::ChargeSucceeded { reference } | Event::RefundSucceeded { reference } => {
                Some(reference)
            }
            Event::ChargeDeclined { reason } => Some(reason),
            Event::VendorReceived { vendor_ref } => Some(vendor_ref),
            Event::Vendor { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}

/// What the caller must do because of a transition, in the same transaction where it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Put the order's items back in stock.
    ReleaseStock,
    /// Give the money back through the gateway (a queued job).
    Refund,
    /// Tell the vendor not to make the order (a queued job).
    CancelAtVendor,
    /// Hand the paid order to the vendor and start the acceptance deadline (queued jobs).
    HandOver,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub next: OrderState,
    pub effects: Vec<Effect>,
    /// False when the event changed nothing (a duplicate, stale or late event).
    pub changed: bool,
}

/// An event that is not allowed in the order's state (answered 409 to a customer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub &'static str);

/// The state machine. See the module notes for the rules.
pub fn apply(state: OrderState, event: &Event) -> Result<Transition, Refused> {
    let mut next = state;
    let mut effects = Vec::new();
    let cancel = |next: &mut OrderState, vendor_rejected: bool| {
        next.cancelled = true;
        if vendor_rejected {
            next.vendor = Vendor::Rejected;
        }
        if next.payment == Payment::Paid {
            next.payment = Payment::Refunding;
        }
    };
    match event {
        Event::ChargeStarted => match state.payment {
            _ if state.cancelled => return Err(Refused("the order was cancelled")),
            Payment::Unpaid => next.payment = Payment::Charging,
            // A retry while the outcome is unknown, or after success: the gateway dedupes
            // by the order's key, so going ahead is safe.
            Payment::Charging | Payment::Paid => {}
            Payment::Failed => {
                return Err(Refused(
                    "the payment for this order failed; place a new order",
                ))
            }
            Payment::Refunding | Payment::Refunded => {
                return Err(Refused("the order was refunded"))
            }
        },
        Event::ChargeSucceeded { .. } => match state.payment {
            Payment::Unpaid | Payment::Charging if !state.cancelled => next.payment = Payment::Paid,
            // The money arrived after the order was called off (or after a decline we were
            // told about first): give it back.
            Payment::Unpaid | Payment::Charging | Payment::Failed => {
                next.cancelled = true;
                next.payment = Payment::Refunding;
            }
            Payment::Paid | Payment::Refunding | Payment::Refunded => {}
        },
        Event::ChargeDeclined { .. } => {
            if matches!(state.payment, Payment::Unpaid | Payment::Charging) {
                next.payment = Payment::Failed;
            }
        }
        Event::VendorReceived { .. } => {
            if state.vendor == Vendor::Pending {
                next.vendor = Vendor::Sent;
            }
        }
        Event::Vendor {
            progress: VendorProgress::Rejected,
            ..
        } => {
            let may_still_refuse = state.vendor < Vendor::Ready;
            if may_still_refuse && state.holds_stock() {
                cancel(&mut next, true);
            } else if may_still_refuse {
                next.vendor = Vendor::Rejected;
            }
        }
        Event::Vendor { progress, .. } => {
            let reached = match progress {
                VendorProgress::Accepted => Vendor::Accepted,
                VendorProgress::Preparing => Vendor::Preparing,
                VendorProgress::Ready => Vendor::Ready,
                VendorProgress::PickedUp => Vendor::PickedUp,
                VendorProgress::Rejected => unreachable!("matched above"),
            };
            if state.holds_stock() && state.payment != Payment::Paid {
                // The vendor never gets an unpaid order, so this report is wrong; recording
                // it would let the payment deadline cancel food that was made or handed over.
                return Err(Refused(
                    "the order is not paid; the store must not make or hand it over",
                ));
            }
            if !state.holds_stock() {
                // Called off on our side: make sure the vendor stops.
                if state.vendor != Vendor::Rejected && reached < Vendor::PickedUp {
                    effects.push(Effect::CancelAtVendor);
                }
            } else if reached > state.vendor && state.vendor != Vendor::Rejected {
                next.vendor = reached;
            }
        }
        Event::VendorDeadlinePassed => {
            // The deadline runs from the payment (the hand-over): an unpaid order is the
            // payment deadline's business.
            if state.holds_stock() && state.payment == Payment::Paid && state.vendor <= Vendor::Sent
            {
                cancel(&mut next, false);
            }
        }
        Event::PaymentDeadlinePassed => {
            if state.holds_stock() && state.payment == Payment::Unpaid {
                cancel(&mut next, false);
            }
        }
        Event::RefundSucceeded { .. } => {
            if state.payment == Payment::Refunding {
                next.payment = Payment::Refunded;
            }
        }
    }
    if state.holds_stock() && !next.holds_stock() {
        effects.push(Effect::ReleaseStock);
        // A paid order still `pending` may be on its way to the vendor (the hand-over job
        // can be mid-call), so the vendor is told too; an unpaid one was never sent.
        let hand_over_may_be_in_flight =
            next.vendor == Vendor::Pending && next.cancelled && state.payment == Payment::Paid;
        if next.vendor_has_it() || hand_over_may_be_in_flight {
            effects.push(Effect::CancelAtVendor);
        }
    }
    if state.payment != Payment::Paid
        && next.payment == Payment::Paid
        && !next.cancelled
        && next.vendor == Vendor::Pending
    {
        effects.push(Effect::HandOver);
    }
    if state.payment != Payment::Refunding && next.payment == Payment::Refunding {
        effects.push(Effect::Refund);
    }
    Ok(Transition {
        changed: next != state,
        next,
        effects,
    })
}

/// The short number a fan gives at the counter and the store calls out: the last four
/// characters of the order id, in capitals. An order id is a UUIDv7, whose tail is random, so
/// two orders open at one stand at the same time almost never share it; the store's page
/// shows the full id beside it for the rare clash.
pub fn pickup_number(order_id: &str) -> String {
    let tail: String = order_id.chars().rev().take(4).collect();
    tail.chars().rev().collect::<String>().to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pickup_number_is_the_order_ids_last_four_characters_in_capitals() {
        assert_eq!(
            pickup_number("0193b1c2-7d4e-7abc-8def-0123456789ab"),
            "89AB"
        );
        assert_eq!(pickup_number("ab"), "AB");
    }

    fn run(events: &[Event]) -> (OrderState, Vec<Effect>) {
        let mut state = OrderState::PLACED;
        let mut all = Vec::new();
        for event in events {
            let t = apply(state, event).expect("allowed");
            state = t.next;
            all.extend(t.effects);
        }
        (state, all)
    }

    fn vendor(progress: VendorProgress) -> Event {
        Event::Vendor {
            progress,
            reason: None,
        }
    }

    fn charged() -> Event {
        Event::ChargeSucceeded {
            reference: "ch_1".into(),
        }
    }

    fn received() -> Event {
        Event::VendorReceived {
            vendor_ref: "v1".into(),
        }
    }

    #[test]
    fn the_happy_path_hands_over_once_paid_and_ends_picked_up() {
        let (state, effects) = run(&[
            Event::ChargeStarted,
            charged(),
            received(),
            vendor(VendorProgress::Accepted),
            vendor(VendorProgress::Preparing),
            vendor(VendorProgress::Ready),
            vendor(VendorProgress::PickedUp),
        ]);
        assert_eq!(state.status(), Status::PickedUp);
        assert!(state.is_terminal());
        assert_eq!(effects, vec![Effect::HandOver]);
    }

    #[test]
    fn placing_and_starting_a_charge_do_not_hand_the_order_over() {
        let (state, effects) = run(&[Event::ChargeStarted]);
        assert_eq!(state.vendor, Vendor::Pending);
        assert!(effects.is_empty());
    }

    #[test]
    fn a_repeated_payment_hands_the_order_over_only_once() {
        let (state, _) = run(&[Event::ChargeStarted, charged()]);
        let again = apply(state, &charged()).unwrap();
        assert!(!again.changed);
        assert!(again.effects.is_empty());
    }

    #[test]
    fn pickup_of_an_unpaid_order_is_refused() {
        for progress in [
            VendorProgress::Accepted,
            VendorProgress::Preparing,
            VendorProgress::Ready,
            VendorProgress::PickedUp,
        ] {
            for state in [
                OrderState::PLACED,
                run(&[Event::ChargeStarted]).0,
                run(&[received()]).0,
            ] {
                let refused = apply(state, &vendor(progress));
                assert!(refused.is_err(), "{progress:?} on {state:?}: {refused:?}");
            }
        }
    }

    #[test]
    fn the_payment_deadline_cannot_cancel_an_order_the_kitchen_started() {
        // Arrange: the vendor reports progress before any payment (it must not).
        let state = OrderState::PLACED;
        let refused = apply(state, &vendor(VendorProgress::PickedUp));
        // Act: the payment window passes.
        let (expired, effects) = run(&[Event::PaymentDeadlinePassed]);
        // Assert: the report changed nothing, and the expiry released stock of an order the
        // vendor never had, without asking it to stop anything.
        assert!(refused.is_err());
        assert_eq!(expired.status(), Status::Cancelled);
        assert_eq!(expired.vendor, Vendor::Pending);
        assert_eq!(effects, vec![Effect::ReleaseStock]);
    }

    #[test]
    fn stale_and_duplicate_events_change_nothing() {
        let (state, _) = run(&[
            charged(),
            received(),
            vendor(VendorProgress::Ready),
            vendor(VendorProgress::Preparing),
        ]);
        assert_eq!(state.vendor, Vendor::Ready);
        for event in [vendor(VendorProgress::Accepted), charged(), received()] {
            let t = apply(state, &event).unwrap();
            assert!(!t.changed, "{event:?}");
            assert!(t.effects.is_empty());
        }
    }

    #[test]
    fn a_declined_payment_releases_stock_once_and_never_reaches_the_vendor() {
        let (state, effects) = run(&[
            Event::ChargeStarted,
            Event::ChargeDeclined {
                reason: "no".into(),
            },
        ]);
        assert_eq!(state.status(), Status::PaymentFailed);
        assert!(state.is_terminal());
        assert_eq!(effects, vec![Effect::ReleaseStock]);
        let again = apply(
            state,
            &Event::ChargeDeclined {
                reason: "no".into(),
            },
        )
        .unwrap();
        assert!(!again.changed && again.effects.is_empty());
        assert!(apply(state, &Event::ChargeStarted).is_err());
    }

    #[test]
    fn a_rejection_after_payment_cancels_and_refunds() {
        let (state, effects) = run(&[
            charged(),
            received(),
            Event::Vendor {
                progress: VendorProgress::Rejected,
                reason: Some("sold out".into()),
            },
        ]);
        assert_eq!(state.status(), Status::Cancelled);
        assert!(!state.is_terminal(), "the refund is still due");
        assert_eq!(
            effects,
            vec![Effect::HandOver, Effect::ReleaseStock, Effect::Refund]
        );
        let done = apply(
            state,
            &Event::RefundSucceeded {
                reference: "rf".into(),
            },
        )
        .unwrap();
        assert_eq!(done.next.status(), Status::Refunded);
        assert!(done.next.is_terminal());
    }

    #[test]
    fn money_arriving_after_a_cancellation_is_refunded_and_not_handed_over() {
        let (state, effects) = run(&[Event::PaymentDeadlinePassed, charged()]);
        assert_eq!(state.payment, Payment::Refunding);
        assert_eq!(state.vendor, Vendor::Pending);
        assert_eq!(effects, vec![Effect::ReleaseStock, Effect::Refund]);
    }

    #[test]
    fn the_vendor_deadline_only_cancels_paid_orders_not_yet_accepted() {
        let (state, _) = run(&[charged(), received(), vendor(VendorProgress::Accepted)]);
        assert!(!apply(state, &Event::VendorDeadlinePassed).unwrap().changed);
        let (state, effects) = run(&[charged(), received(), Event::VendorDeadlinePassed]);
        assert_eq!(state.status(), Status::Cancelled);
        assert_eq!(
            effects,
            vec![
                Effect::HandOver,
                Effect::ReleaseStock,
                Effect::CancelAtVendor,
                Effect::Refund
            ]
        );
        let (unpaid, _) = run(&[Event::ChargeStarted]);
        assert!(!apply(unpaid, &Event::VendorDeadlinePassed).unwrap().changed);
    }

    #[test]
    fn a_paid_order_cancelled_before_the_vendor_answered_is_withdrawn_there() {
        let (state, effects) = run(&[charged(), Event::VendorDeadlinePassed]);
        assert_eq!(state.vendor, Vendor::Pending);
        assert!(effects.contains(&Effect::CancelAtVendor), "{effects:?}");
    }

    #[test]
    fn an_unpaid_order_expires_but_a_charging_one_waits_for_its_outcome() {
        let (state, _) = run(&[Event::PaymentDeadlinePassed]);
        assert_eq!(state.status(), Status::Cancelled);
        let (state, _) = run(&[Event::ChargeStarted, Event::PaymentDeadlinePassed]);
        assert_eq!(state.status(), Status::Placed);
    }

    #[test]
    fn vendor_progress_on_a_cancelled_order_asks_the_vendor_to_stop() {
        let (state, _) = run(&[Event::PaymentDeadlinePassed]);
        let t = apply(state, &vendor(VendorProgress::Accepted)).unwrap();
        assert!(!t.changed);
        assert_eq!(t.effects, vec![Effect::CancelAtVendor]);
    }

    #[test]
    fn texts_round_trip() {
        for status in [Status::Placed, Status::PickedUp, Status::PaymentFailed] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Payment::parse("refunding"), Some(Payment::Refunding));
        assert_eq!(Vendor::parse("picked_up"), Some(Vendor::PickedUp));
        assert_eq!(Vendor::parse("nope"), None);
    }
}
