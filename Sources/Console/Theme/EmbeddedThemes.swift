// The shipped themes, compiled in so that the binary works with no themes/ directory beside it.
// Keep each text identical to themes/NAME.yaml: a test compares them byte for byte.

enum EmbeddedThemes {
    static let yaml: [String: String] = [
        "default": #"""
# TenOps console theme "default": for dark terminals.
#
# Each role the views use maps to a style:
#   fg, bg  default, black, red, green, yellow, blue, magenta, cyan, white,
#           bright-NAME (16 colours) or a 256-colour index 0-255
#   attrs   a list of bold, reverse, underline
# Colours degrade to what the terminal has (256, 16, 8). With NO_COLOR, or on a terminal
# without colours, the attributes of the monochrome theme apply instead.
# Copy this file to make a theme; `:theme NAME` or `--theme NAME` switches to it.
name: default
description: Dark background, calm colours; only state is loud.
roles:
  text:      { fg: default,      bg: default }
  muted:     { fg: 245,          bg: default }
  header:    { fg: bright-white, bg: 24,      attrs: [bold] }
  border:    { fg: 243,          bg: default }
  title:     { fg: 117,          bg: default, attrs: [bold] }
  selection: { fg: black,        bg: 117 }
  key:       { fg: 221,          bg: default, attrs: [bold] }
  active:    { fg: 84,           bg: default, attrs: [bold] }
  standby:   { fg: 75,           bg: default }
  warning:   { fg: 214,          bg: default }
  error:     { fg: 203,          bg: default, attrs: [bold] }
  ok:        { fg: 114,          bg: default }
  bar:       { fg: 75,           bg: default }
  barEmpty:  { fg: 242,          bg: default }

"""#,
        "light": #"""
# TenOps console theme "light": for light terminals (dark text on a pale background).
# The format is described in default.yaml.
name: light
description: Dark text for light backgrounds.
roles:
  text:      { fg: default, bg: default }
  muted:     { fg: 240,     bg: default }
  header:    { fg: white,   bg: 25,      attrs: [bold] }
  border:    { fg: 240,     bg: default }
  title:     { fg: 25,      bg: default, attrs: [bold] }
  selection: { fg: white,   bg: 25 }
  key:       { fg: 130,     bg: default, attrs: [bold] }
  active:    { fg: 28,      bg: default, attrs: [bold] }
  standby:   { fg: 25,      bg: default }
  warning:   { fg: 166,     bg: default }
  error:     { fg: 160,     bg: default, attrs: [bold] }
  ok:        { fg: 28,      bg: default }
  bar:       { fg: 25,      bg: default }
  barEmpty:  { fg: 244,     bg: default }

"""#,
        "high-contrast": #"""
# TenOps console theme "high-contrast": bright basic colours on black, bold where it helps.
# Only the 16 basic colours, so it looks the same on every colour terminal.
# The format is described in default.yaml.
name: high-contrast
description: Bright colours on black for poor displays and tired eyes.
roles:
  text:      { fg: bright-white,  bg: black }
  muted:     { fg: white,         bg: black }
  header:    { fg: black,         bg: bright-yellow, attrs: [bold] }
  border:    { fg: bright-white,  bg: black }
  title:     { fg: bright-yellow, bg: black,         attrs: [bold] }
  selection: { fg: black,         bg: bright-cyan,   attrs: [bold] }
  key:       { fg: bright-yellow, bg: black,         attrs: [bold, underline] }
  active:    { fg: bright-green,  bg: black,         attrs: [bold] }
  standby:   { fg: bright-cyan,   bg: black,         attrs: [bold] }
  warning:   { fg: bright-yellow, bg: black,         attrs: [bold] }
  error:     { fg: bright-white,  bg: red,           attrs: [bold] }
  ok:        { fg: bright-green,  bg: black }
  bar:       { fg: bright-cyan,   bg: black }
  barEmpty:  { fg: white,         bg: black }

"""#,
        "monochrome": #"""
# TenOps console theme "monochrome": attributes only, no colour.
# This is also how every theme looks with NO_COLOR set or on a terminal without colours:
# the console then uses these attributes for each role.
# The format is described in default.yaml.
name: monochrome
description: No colour; roles differ by bold, reverse and underline.
roles:
  text:      { fg: default, bg: default }
  muted:     { fg: default, bg: default }
  header:    { fg: default, bg: default, attrs: [reverse, bold] }
  border:    { fg: default, bg: default }
  title:     { fg: default, bg: default, attrs: [bold] }
  selection: { fg: default, bg: default, attrs: [reverse] }
  key:       { fg: default, bg: default, attrs: [bold] }
  active:    { fg: default, bg: default, attrs: [bold] }
  standby:   { fg: default, bg: default, attrs: [underline] }
  warning:   { fg: default, bg: default, attrs: [underline] }
  error:     { fg: default, bg: default, attrs: [reverse, bold] }
  ok:        { fg: default, bg: default }
  bar:       { fg: default, bg: default, attrs: [bold] }
  barEmpty:  { fg: default, bg: default }

"""#,
    ]
}
