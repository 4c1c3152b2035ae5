"""Events in the Segment Spec: types, validation and the e-commerce spec."""
