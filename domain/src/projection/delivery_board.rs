//! The riders' board: deliveries per region; the open ones are on offer.

use super::{Latest, Projection, ViewKey};
use crate::delivery::{DeliveryDetails, DeliveryEvent, DeliveryState};
use crate::envelope::{Envelope, Event};
use crate::ids::OrderId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardEntry {
    pub order_id: OrderId,
    pub details: Option<DeliveryDetails>,
    /// Once the food is ready it stays ready: a plain flag converges.
    pub food_ready: bool,
    pub state: Latest<Option<DeliveryState>>,
}

impl BoardEntry {
    /// Offered to riders: opened and not yet taken.
    pub fn is_open(&self) -> bool {
        matches!(self.state.value, Some(DeliveryState::Open))
    }
}

pub struct DeliveryBoardProjection;

impl Projection for DeliveryBoardProjection {
    const NAME: &'static str = "delivery-board";
    type View = BoardEntry;

    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey> {
        let Event::Delivery(event) = event else { return None };
        Some(ViewKey { key: envelope.aggregate_id.clone(), partition: event.details().region.0.clone() })
    }

    fn apply(mut view: BoardEntry, envelope: &Envelope, event: &Event) -> BoardEntry {
        let Event::Delivery(event) = event else { return view };
        view.order_id = OrderId(envelope.aggregate_id.clone());
        view.details = Some(event.details().clone());
        let state = match event {
            DeliveryEvent::DeliveryOpened { .. } => DeliveryState::Open,
            DeliveryEvent::FoodReady { .. } => {
                view.food_ready = true;
                DeliveryState::Open
            }
            DeliveryEvent::DeliveryPicked { rider_id, .. } => DeliveryState::PickedUp(rider_id.clone()),
            DeliveryEvent::DeliveryCompleted { rider_id, .. } => DeliveryState::Delivered(rider_id.clone()),
            DeliveryEvent::AccidentReported { rider_id, .. } => DeliveryState::Failed(rider_id.clone()),
        };
        view.state.set(envelope.version, Some(state));
        view
    }
}
