package train

// lossTerms names a step's logged loss terms, in display order: the total, then the terms of
// L = L_spread (SupCon, cNCE) or SimCLR + beta L_AE + gamma L_CE. It is the one list: Terms.Named
// (and so metrics.jsonl), the progress bar and the training-curves plot follow it.
var lossTerms = []string{"loss", "supcon", "cnce", "simclr", "ae", "ce"}
