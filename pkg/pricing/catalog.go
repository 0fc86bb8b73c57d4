package pricing

// CatalogDate is the as-of date of the built-in figures: the SageMaker
// on-demand prices in the instance table and the on-prem $/GPU-hour
// estimates. They are list prices compiled by hand, not live data.
const CatalogDate = "2026-11"

// regions are the columns of the built-in instance table, in order.
var regions = [...]string{"us-east-1", "us-west-2", "eu-west-1"}

// fallbackRegion is priced when a lookup's region has no column.
const fallbackRegion = "us-east-1"

// perRegion is one instance type's on-demand USD per instance-hour, one
// figure per entry of regions.
type perRegion [len(regions)]float64

// basis says how solid a built-in figure is.
type basis uint8

const (
	// list: the published SageMaker real-time inference price.
	list basis = iota
	// estimate: no published SageMaker figure was at hand when the table
	// was compiled; derived from the EC2 price of the same hardware and the
	// usual SageMaker markup, or scaled from a sibling size.
	estimate
)

// hardware is one built-in instance type.
type hardware struct {
	gpu   string // canonical GPU model, see CanonicalGPU
	gpus  int
	usd   perRegion
	basis basis
}

// builtin is every value of SageMaker's AIRecommendationInstanceType
// enum (aws-sdk-go-v2/service/sagemaker/types), with its GPUs and
// SageMaker real-time inference on-demand price in USD per instance-hour,
// as of CatalogDate. These are list prices to be overridden by a pricing
// file, not live data; check them against the AWS price list before
// relying on them.
//
// Columns follow regions. us-west-2 lists at the us-east-1 price;
// eu-west-1 is the us-east-1 price × 1.12, rounded to 4 decimals (AWS's
// eu-west-1 GPU prices run about 10-15 % above us-east-1).
//
// Rows marked estimate had no published SageMaker figure at hand:
// ml.g7e.2xlarge is the EC2 g7e.2xlarge price ($3.36) × the usual 1.25
// SageMaker markup, its other sizes scaled by GPU count and vCPUs;
// ml.g7 (RTX PRO 4500, no EC2 figure at hand either) is placed between
// ml.g6 and ml.g6e by size; ml.p4de, ml.p5e, ml.p5en and ml.p6-b200 are
// EC2 prices × the ~1.15-1.25 SageMaker markup; ml.p5.4xlarge is an
// eighth of ml.p5.48xlarge. AWS cut EC2 P4/P5 on-demand prices in
// June 2025; the p4/p5 rows here are the SageMaker list prices before
// that cut and may be high.
var builtin = map[string]hardware{
	"ml.g5.xlarge":        {"A10G", 1, perRegion{1.408, 1.408, 1.577}, list},
	"ml.g5.2xlarge":       {"A10G", 1, perRegion{1.515, 1.515, 1.6968}, list},
	"ml.g5.4xlarge":       {"A10G", 1, perRegion{2.03, 2.03, 2.2736}, list},
	"ml.g5.8xlarge":       {"A10G", 1, perRegion{3.06, 3.06, 3.4272}, list},
	"ml.g5.12xlarge":      {"A10G", 4, perRegion{7.09, 7.09, 7.9408}, list},
	"ml.g5.16xlarge":      {"A10G", 1, perRegion{5.12, 5.12, 5.7344}, list},
	"ml.g5.24xlarge":      {"A10G", 4, perRegion{10.18, 10.18, 11.4016}, list},
	"ml.g5.48xlarge":      {"A10G", 8, perRegion{20.36, 20.36, 22.8032}, list},
	"ml.g6.xlarge":        {"L4", 1, perRegion{1.0064, 1.0064, 1.1272}, list},
	"ml.g6.2xlarge":       {"L4", 1, perRegion{1.222, 1.222, 1.3686}, list},
	"ml.g6.4xlarge":       {"L4", 1, perRegion{1.6556, 1.6556, 1.8543}, list},
	"ml.g6.8xlarge":       {"L4", 1, perRegion{2.5226, 2.5226, 2.8253}, list},
	"ml.g6.12xlarge":      {"L4", 4, perRegion{5.752, 5.752, 6.4422}, list},
	"ml.g6.16xlarge":      {"L4", 1, perRegion{4.2566, 4.2566, 4.7674}, list},
	"ml.g6.24xlarge":      {"L4", 4, perRegion{8.3286, 8.3286, 9.328}, list},
	"ml.g6.48xlarge":      {"L4", 8, perRegion{16.6573, 16.6573, 18.6562}, list},
	"ml.g6e.xlarge":       {"L40S", 1, perRegion{2.3366, 2.3366, 2.617}, list},
	"ml.g6e.2xlarge":      {"L40S", 1, perRegion{2.8206, 2.8206, 3.1591}, list},
	"ml.g6e.4xlarge":      {"L40S", 1, perRegion{3.7886, 3.7886, 4.2432}, list},
	"ml.g6e.8xlarge":      {"L40S", 1, perRegion{5.7246, 5.7246, 6.4116}, list},
	"ml.g6e.12xlarge":     {"L40S", 4, perRegion{13.1214, 13.1214, 14.696}, list},
	"ml.g6e.16xlarge":     {"L40S", 1, perRegion{9.5966, 9.5966, 10.7482}, list},
	"ml.g6e.24xlarge":     {"L40S", 4, perRegion{18.8522, 18.8522, 21.1145}, list},
	"ml.g6e.48xlarge":     {"L40S", 8, perRegion{37.7044, 37.7044, 42.2289}, list},
	"ml.g7.2xlarge":       {"RTX-PRO-4500-32GB", 1, perRegion{1.85, 1.85, 2.072}, estimate},
	"ml.g7.4xlarge":       {"RTX-PRO-4500-32GB", 1, perRegion{2.35, 2.35, 2.632}, estimate},
	"ml.g7.8xlarge":       {"RTX-PRO-4500-32GB", 1, perRegion{3.35, 3.35, 3.752}, estimate},
	"ml.g7.12xlarge":      {"RTX-PRO-4500-32GB", 2, perRegion{6.40, 6.40, 7.168}, estimate},
	"ml.g7.24xlarge":      {"RTX-PRO-4500-32GB", 4, perRegion{12.80, 12.80, 14.336}, estimate},
	"ml.g7.48xlarge":      {"RTX-PRO-4500-32GB", 8, perRegion{25.60, 25.60, 28.672}, estimate},
	"ml.g7e.2xlarge":      {"RTX-PRO-6000-96GB", 1, perRegion{4.20, 4.20, 4.704}, estimate},
	"ml.g7e.4xlarge":      {"RTX-PRO-6000-96GB", 1, perRegion{5.05, 5.05, 5.656}, estimate},
	"ml.g7e.8xlarge":      {"RTX-PRO-6000-96GB", 1, perRegion{6.80, 6.80, 7.616}, estimate},
	"ml.g7e.12xlarge":     {"RTX-PRO-6000-96GB", 2, perRegion{12.40, 12.40, 13.888}, estimate},
	"ml.g7e.24xlarge":     {"RTX-PRO-6000-96GB", 4, perRegion{24.80, 24.80, 27.776}, estimate},
	"ml.g7e.48xlarge":     {"RTX-PRO-6000-96GB", 8, perRegion{49.60, 49.60, 55.552}, estimate},
	"ml.p3.2xlarge":       {"V100-16GB", 1, perRegion{3.825, 3.825, 4.284}, list},
	"ml.p3.8xlarge":       {"V100-16GB", 4, perRegion{14.688, 14.688, 16.4506}, list},
	"ml.p3.16xlarge":      {"V100-16GB", 8, perRegion{28.152, 28.152, 31.5302}, list},
	"ml.p4d.24xlarge":     {"A100-40GB", 8, perRegion{37.688, 37.688, 42.2106}, list},
	"ml.p4de.24xlarge":    {"A100-80GB", 8, perRegion{47.11, 47.11, 52.7632}, estimate},
	"ml.p5.4xlarge":       {"H100-80GB", 1, perRegion{14.14, 14.14, 15.8368}, estimate},
	"ml.p5.48xlarge":      {"H100-80GB", 8, perRegion{113.07, 113.07, 126.6384}, list},
	"ml.p5e.48xlarge":     {"H200-141GB", 8, perRegion{124.38, 124.38, 139.3056}, estimate},
	"ml.p5en.48xlarge":    {"H200-141GB", 8, perRegion{130.03, 130.03, 145.6336}, estimate},
	"ml.p6-b200.48xlarge": {"B200-180GB", 8, perRegion{142.42, 142.42, 159.5104}, estimate},
}

// defaultGPUHour are the built-in on-prem $/GPU-hour estimates by
// canonical GPU model, as of CatalogDate: purchase price of the GPU and
// its share of the server amortised over four years at full
// availability, plus power, cooling and hosting. They are rough
// estimates for labs that have not set their own figures; a pricing
// file's gpu_hour_usd overrides any of them.
var defaultGPUHour = map[string]float64{
	"B200-180GB":        3.50,
	"H200-141GB":        2.60,
	"H100-80GB":         2.10,
	"A100-80GB":         1.20,
	"A100-40GB":         0.95,
	"RTX-PRO-6000-96GB": 0.90,
	"L40S":              0.75,
	"RTX-PRO-4500-32GB": 0.45,
	"A10G":              0.40,
	"V100-16GB":         0.35,
	"L4":                0.30,
	"T4":                0.15,
}
