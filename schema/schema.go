// Package schema embeds crio's configuration schema, schema/crio.cue.
package schema

import _ "embed"

// Source is the CUE text of the schema.
//
//go:embed crio.cue
var Source string
