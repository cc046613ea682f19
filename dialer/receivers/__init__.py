"""Receivers: contact-center platforms' own "call ended" events, straight into intake.

One module per platform (twilio_flex, amazon_connect, genesys_cloud) says which of its
events mean a voice call with an agent is over and where their fields are; `mapping`
holds what they share (paths into an event, turning found values into a `CallEnded`),
`mapping_file` reads a deployment's overrides (RECEIVERS_FILE), and `outcome` sends the
call to dialer.intake and counts what happened. The HTTP routes and their
authentication are in aftercall.web.intake_api.
"""
