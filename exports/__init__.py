"""Files out: the MoJ return, provider reports, VRG packs and CSV, with disclosure control."""
