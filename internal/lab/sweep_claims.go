package lab

// EvaluateSweepClaims judges the lesson's claims on scaling from a sweep's
// curves. It judges none yet: a sweep's results.json carries no claims.
func EvaluateSweepClaims(sw *Sweep) []ClaimResult {
	return nil
}
