//! STUB (to be replaced): what charon knows about an IKE_SA, read into
//! the core's `SaView`. The signatures below are the contract.
#![allow(unused_variables)]

use crate::mobike::task::ViewNeeds;
use crate::mobike::SaView;

use super::ike_sa::IkeSa;

/// The facts of one IKE_SA for one call, owning what the view borrows.
pub struct SaFacts {}

/// The basic facts of `ike` and the costly ones in `needs`.
pub fn gather(ike: IkeSa, needs: ViewNeeds) -> SaFacts {
    unimplemented!("facts::gather")
}

impl SaFacts {
    pub fn view(&self) -> SaView<'_> {
        unimplemented!("SaFacts::view")
    }
}
