package gateway

import (
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/perfleet/perfleet/pkg/pb/perfleet/v1"
)

// member maps one field of a perfleet.v1 message onto one member of the
// SageMaker JSON shape.
type member struct {
	// field is the protobuf field name (snake_case).
	field protoreflect.Name
	// name is the AWS member name (PascalCase, as in the API reference).
	name string
	// wrap, when set, puts each element of a repeated string field in an
	// object under this member: ["u"] <-> [{"S3Uri": "u"}]. SageMaker's
	// AdapterDetails lists entries where perfleet keeps bare strings.
	wrap string
	// always emits a false or zero scalar instead of leaving it out (a
	// proto3 bool without presence whose false is meaningful).
	always bool
	// outputOnly marks members that SageMaker has only in responses (the
	// request shape lacks them). They are still decoded from requests, so
	// that the endpoint rejects them exactly as it does over gRPC.
	outputOnly bool
	// extension marks a perfleet member that SageMaker does not have. The
	// AWS SDKs never send it; other clients may.
	extension bool
}

// shape is the JSON shape of one perfleet.v1 message.
type shape struct {
	// union marks SageMaker union shapes: exactly one member is set, and an
	// empty union is left out of responses altogether.
	union bool
	// members in the order they are written.
	members []member
	// grpcOnly lists fields that never appear on the JSON wire: perfleet
	// extensions that the SageMaker shapes have no member for.
	grpcOnly []protoreflect.Name
}

// m is shorthand for a plain member.
func m(field, name string) member { return member{field: protoreflect.Name(field), name: name} }

// fullName is the message's protobuf full name.
func fullName(msg protoreflect.ProtoMessage) protoreflect.FullName {
	return msg.ProtoReflect().Descriptor().FullName()
}

// shapes is the explicit field-name map between perfleet.v1 messages and
// SageMaker's JSON shapes, for every message the 14 operations carry. The
// names are checked against the SageMaker SDK's own schemas in
// shapes_test.go. Acronyms follow SageMaker: AI, Arn, S3, Uri, Mlflow, Vpc,
// Id, Mb.
var shapes = map[protoreflect.FullName]*shape{
	// Common.
	fullName(&pb.Tag{}):          {members: []member{m("key", "Key"), m("value", "Value")}},
	fullName(&pb.MlflowConfig{}): {members: []member{m("mlflow_resource_arn", "MlflowResourceArn"), m("mlflow_experiment_name", "MlflowExperimentName"), m("mlflow_run_name", "MlflowRunName")}},

	// AI workload configs.
	fullName(&pb.WorkloadSpec{}):      {union: true, members: []member{m("inline", "Inline")}},
	fullName(&pb.AIWorkloadConfigs{}): {members: []member{m("workload_spec", "WorkloadSpec")}},
	fullName(&pb.S3DataSource{}):      {members: []member{m("s3_uri", "S3Uri")}},
	fullName(&pb.DataSource{}):        {members: []member{m("s3_data_source", "S3DataSource")}},
	fullName(&pb.InputDataConfig{}):   {members: []member{m("channel_name", "ChannelName"), m("data_source", "DataSource")}},
	fullName(&pb.DatasetConfig{}):     {union: true, members: []member{m("input_data_config", "InputDataConfig")}},
	fullName(&pb.CreateAIWorkloadConfigRequest{}): {members: []member{
		m("ai_workload_config_name", "AIWorkloadConfigName"),
		m("ai_workload_configs", "AIWorkloadConfigs"),
		m("dataset_config", "DatasetConfig"),
		m("tags", "Tags"),
		{field: "client_token", name: "ClientToken", extension: true},
	}},
	fullName(&pb.CreateAIWorkloadConfigResponse{}):  {members: []member{m("ai_workload_config_arn", "AIWorkloadConfigArn")}},
	fullName(&pb.DescribeAIWorkloadConfigRequest{}): {members: []member{m("ai_workload_config_name", "AIWorkloadConfigName")}},
	fullName(&pb.DescribeAIWorkloadConfigResponse{}): {members: []member{
		m("ai_workload_config_arn", "AIWorkloadConfigArn"),
		m("ai_workload_config_name", "AIWorkloadConfigName"),
		m("ai_workload_configs", "AIWorkloadConfigs"),
		m("dataset_config", "DatasetConfig"),
		m("tags", "Tags"),
		m("creation_time", "CreationTime"),
	}},
	fullName(&pb.ListAIWorkloadConfigsRequest{}): {members: []member{
		m("name_contains", "NameContains"),
		m("creation_time_after", "CreationTimeAfter"),
		m("creation_time_before", "CreationTimeBefore"),
		m("sort_by", "SortBy"),
		m("sort_order", "SortOrder"),
		m("max_results", "MaxResults"),
		m("next_token", "NextToken"),
	}},
	fullName(&pb.AIWorkloadConfigSummary{}): {members: []member{
		m("ai_workload_config_name", "AIWorkloadConfigName"),
		m("ai_workload_config_arn", "AIWorkloadConfigArn"),
		m("creation_time", "CreationTime"),
	}},
	fullName(&pb.ListAIWorkloadConfigsResponse{}):  {members: []member{m("ai_workload_configs", "AIWorkloadConfigs"), m("next_token", "NextToken")}},
	fullName(&pb.DeleteAIWorkloadConfigRequest{}):  {members: []member{m("ai_workload_config_name", "AIWorkloadConfigName")}},
	fullName(&pb.DeleteAIWorkloadConfigResponse{}): {members: []member{m("ai_workload_config_arn", "AIWorkloadConfigArn")}},

	// AI benchmark jobs.
	fullName(&pb.InferenceComponentRef{}): {members: []member{m("identifier", "Identifier")}},
	fullName(&pb.BenchmarkEndpoint{}): {members: []member{
		m("identifier", "Identifier"),
		m("target_container_hostname", "TargetContainerHostname"),
		m("inference_components", "InferenceComponents"),
	}},
	fullName(&pb.BenchmarkTarget{}): {union: true, members: []member{m("endpoint", "Endpoint")}},
	fullName(&pb.CloudWatchLogs{}):  {members: []member{m("log_group_arn", "LogGroupArn"), m("log_stream_name", "LogStreamName")}},
	fullName(&pb.AIBenchmarkOutputConfig{}): {members: []member{
		m("s3_output_location", "S3OutputLocation"),
		m("mlflow_config", "MlflowConfig"),
		{field: "cloud_watch_logs", name: "CloudWatchLogs", outputOnly: true},
	}},
	fullName(&pb.VpcConfig{}):     {members: []member{m("security_group_ids", "SecurityGroupIds"), m("subnets", "Subnets")}},
	fullName(&pb.NetworkConfig{}): {members: []member{m("vpc_config", "VpcConfig")}},
	fullName(&pb.CreateAIBenchmarkJobRequest{}): {members: []member{
		m("ai_benchmark_job_name", "AIBenchmarkJobName"),
		m("ai_workload_config_identifier", "AIWorkloadConfigIdentifier"),
		m("benchmark_target", "BenchmarkTarget"),
		m("output_config", "OutputConfig"),
		m("role_arn", "RoleArn"),
		m("network_config", "NetworkConfig"),
		m("tags", "Tags"),
		{field: "client_token", name: "ClientToken", extension: true},
	}},
	fullName(&pb.CreateAIBenchmarkJobResponse{}):  {members: []member{m("ai_benchmark_job_arn", "AIBenchmarkJobArn")}},
	fullName(&pb.DescribeAIBenchmarkJobRequest{}): {members: []member{m("ai_benchmark_job_name", "AIBenchmarkJobName")}},
	fullName(&pb.DescribeAIBenchmarkJobResponse{}): {
		members: []member{
			m("ai_benchmark_job_arn", "AIBenchmarkJobArn"),
			m("ai_benchmark_job_name", "AIBenchmarkJobName"),
			m("ai_benchmark_job_status", "AIBenchmarkJobStatus"),
			m("ai_workload_config_identifier", "AIWorkloadConfigIdentifier"),
			m("benchmark_target", "BenchmarkTarget"),
			m("creation_time", "CreationTime"),
			m("output_config", "OutputConfig"),
			m("role_arn", "RoleArn"),
			m("start_time", "StartTime"),
			m("end_time", "EndTime"),
			m("failure_reason", "FailureReason"),
			m("network_config", "NetworkConfig"),
			m("tags", "Tags"),
		},
		grpcOnly: []protoreflect.Name{"last_modified_time"},
	},
	fullName(&pb.ListAIBenchmarkJobsRequest{}): {members: []member{
		m("name_contains", "NameContains"),
		m("status_equals", "StatusEquals"),
		m("creation_time_after", "CreationTimeAfter"),
		m("creation_time_before", "CreationTimeBefore"),
		m("sort_by", "SortBy"),
		m("sort_order", "SortOrder"),
		m("max_results", "MaxResults"),
		m("next_token", "NextToken"),
	}},
	fullName(&pb.AIBenchmarkJobSummary{}): {members: []member{
		m("ai_benchmark_job_name", "AIBenchmarkJobName"),
		m("ai_benchmark_job_arn", "AIBenchmarkJobArn"),
		m("ai_benchmark_job_status", "AIBenchmarkJobStatus"),
		m("creation_time", "CreationTime"),
		m("end_time", "EndTime"),
		m("ai_workload_config_name", "AIWorkloadConfigName"),
	}},
	fullName(&pb.ListAIBenchmarkJobsResponse{}): {members: []member{m("ai_benchmark_jobs", "AIBenchmarkJobs"), m("next_token", "NextToken")}},
	fullName(&pb.StopAIBenchmarkJobRequest{}):   {members: []member{m("ai_benchmark_job_name", "AIBenchmarkJobName")}},
	fullName(&pb.StopAIBenchmarkJobResponse{}):  {members: []member{m("ai_benchmark_job_arn", "AIBenchmarkJobArn")}},
	fullName(&pb.DeleteAIBenchmarkJobRequest{}): {members: []member{m("ai_benchmark_job_name", "AIBenchmarkJobName")},
		grpcOnly: []protoreflect.Name{"purge_results"}},
	fullName(&pb.DeleteAIBenchmarkJobResponse{}): {members: []member{m("ai_benchmark_job_arn", "AIBenchmarkJobArn")},
		grpcOnly: []protoreflect.Name{"purged_objects"}},

	// AI recommendation jobs.
	fullName(&pb.S3ModelSource{}):         {members: []member{m("s3_uri", "S3Uri")}},
	fullName(&pb.ModelSource{}):           {union: true, members: []member{m("s3", "S3")}},
	fullName(&pb.PerformanceConstraint{}): {members: []member{m("metric", "Metric")}},
	fullName(&pb.PerformanceTarget{}):     {members: []member{m("constraints", "Constraints")}},
	fullName(&pb.CapacityReservationConfig{}): {members: []member{
		m("capacity_reservation_preference", "CapacityReservationPreference"),
		m("ml_reservation_arns", "MlReservationArns"),
	}},
	fullName(&pb.ComputeSpec{}):            {members: []member{m("instance_types", "InstanceTypes"), m("capacity_reservation_config", "CapacityReservationConfig")}},
	fullName(&pb.InferenceSpecification{}): {members: []member{m("framework", "Framework")}},
	fullName(&pb.AdapterS3Uri{}):           {members: []member{m("adapter_id", "AdapterId"), m("s3_uri", "S3Uri")}},
	fullName(&pb.AdapterModelPackage{}):    {members: []member{m("adapter_id", "AdapterId"), m("model_package_arn", "ModelPackageArn")}},
	fullName(&pb.AdapterSource{}):          {union: true, members: []member{m("s3_uris", "S3Uris"), m("model_package_arns", "ModelPackageArns")}},
	fullName(&pb.AIRecommendationOutputConfig{}): {members: []member{
		m("s3_output_location", "S3OutputLocation"),
		m("model_package_group_identifier", "ModelPackageGroupIdentifier"),
		m("mlflow_config", "MlflowConfig"),
	}},
	fullName(&pb.OptimizationDetail{}): {members: []member{m("optimization_type", "OptimizationType"), m("optimization_config", "OptimizationConfig")}},
	fullName(&pb.InstanceDetail{}): {members: []member{
		m("instance_type", "InstanceType"),
		m("instance_count", "InstanceCount"),
		m("copy_count_per_instance", "CopyCountPerInstance"),
	}},
	fullName(&pb.ModelDetails{}): {members: []member{
		m("model_package_arn", "ModelPackageArn"),
		m("inference_specification_name", "InferenceSpecificationName"),
		m("instance_details", "InstanceDetails"),
	}},
	fullName(&pb.S3Channel{}): {members: []member{m("channel_name", "ChannelName"), m("uri", "Uri")}},
	fullName(&pb.DeploymentConfiguration{}): {members: []member{
		m("image_uri", "ImageUri"),
		m("instance_type", "InstanceType"),
		m("instance_count", "InstanceCount"),
		m("copy_count_per_instance", "CopyCountPerInstance"),
		m("environment_variables", "EnvironmentVariables"),
		m("min_cpu_memory_required_in_mb", "MinCpuMemoryRequiredInMb"),
		m("s3", "S3"),
	}},
	fullName(&pb.ExpectedPerformance{}): {members: []member{m("metric", "Metric"), m("stat", "Stat"), m("value", "Value"), m("unit", "Unit")}},
	fullName(&pb.AdapterDetails{}): {members: []member{
		{field: "s3_uris", name: "S3Uris", wrap: "S3Uri"},
		{field: "model_package_arns", name: "ModelPackageArns", wrap: "ModelPackageArn"},
	}},
	fullName(&pb.AIRecommendation{}): {members: []member{
		m("recommendation_description", "RecommendationDescription"),
		m("optimization_details", "OptimizationDetails"),
		m("model_details", "ModelDetails"),
		m("deployment_configuration", "DeploymentConfiguration"),
		m("ai_benchmark_job_arn", "AIBenchmarkJobArn"),
		m("expected_performance", "ExpectedPerformance"),
		m("adapter_details", "AdapterDetails"),
	}},
	fullName(&pb.CreateAIRecommendationJobRequest{}): {members: []member{
		m("ai_recommendation_job_name", "AIRecommendationJobName"),
		m("ai_workload_config_identifier", "AIWorkloadConfigIdentifier"),
		m("model_source", "ModelSource"),
		m("output_config", "OutputConfig"),
		m("performance_target", "PerformanceTarget"),
		m("role_arn", "RoleArn"),
		m("compute_spec", "ComputeSpec"),
		m("inference_specification", "InferenceSpecification"),
		m("optimize_model", "OptimizeModel"),
		m("adapter_source", "AdapterSource"),
		m("tags", "Tags"),
		{field: "client_token", name: "ClientToken", extension: true},
	}},
	fullName(&pb.CreateAIRecommendationJobResponse{}):  {members: []member{m("ai_recommendation_job_arn", "AIRecommendationJobArn")}},
	fullName(&pb.DescribeAIRecommendationJobRequest{}): {members: []member{m("ai_recommendation_job_name", "AIRecommendationJobName")}},
	fullName(&pb.DescribeAIRecommendationJobResponse{}): {
		members: []member{
			m("ai_recommendation_job_arn", "AIRecommendationJobArn"),
			m("ai_recommendation_job_name", "AIRecommendationJobName"),
			m("ai_recommendation_job_status", "AIRecommendationJobStatus"),
			m("ai_workload_config_identifier", "AIWorkloadConfigIdentifier"),
			m("creation_time", "CreationTime"),
			m("model_source", "ModelSource"),
			m("output_config", "OutputConfig"),
			m("role_arn", "RoleArn"),
			m("start_time", "StartTime"),
			m("end_time", "EndTime"),
			m("failure_reason", "FailureReason"),
			m("compute_spec", "ComputeSpec"),
			m("inference_specification", "InferenceSpecification"),
			{field: "optimize_model", name: "OptimizeModel", always: true},
			m("performance_target", "PerformanceTarget"),
			m("adapter_source", "AdapterSource"),
			m("tags", "Tags"),
			m("recommendations", "Recommendations"),
		},
		grpcOnly: []protoreflect.Name{"last_modified_time", "candidates"},
	},
	fullName(&pb.ListAIRecommendationJobsRequest{}): {members: []member{
		m("name_contains", "NameContains"),
		m("status_equals", "StatusEquals"),
		m("creation_time_after", "CreationTimeAfter"),
		m("creation_time_before", "CreationTimeBefore"),
		m("sort_by", "SortBy"),
		m("sort_order", "SortOrder"),
		m("max_results", "MaxResults"),
		m("next_token", "NextToken"),
	}},
	fullName(&pb.AIRecommendationJobSummary{}): {members: []member{
		m("ai_recommendation_job_name", "AIRecommendationJobName"),
		m("ai_recommendation_job_arn", "AIRecommendationJobArn"),
		m("ai_recommendation_job_status", "AIRecommendationJobStatus"),
		m("creation_time", "CreationTime"),
		m("end_time", "EndTime"),
	}},
	fullName(&pb.ListAIRecommendationJobsResponse{}):  {members: []member{m("ai_recommendation_jobs", "AIRecommendationJobs"), m("next_token", "NextToken")}},
	fullName(&pb.StopAIRecommendationJobRequest{}):    {members: []member{m("ai_recommendation_job_name", "AIRecommendationJobName")}},
	fullName(&pb.StopAIRecommendationJobResponse{}):   {members: []member{m("ai_recommendation_job_arn", "AIRecommendationJobArn")}},
	fullName(&pb.DeleteAIRecommendationJobRequest{}):  {members: []member{m("ai_recommendation_job_name", "AIRecommendationJobName")}},
	fullName(&pb.DeleteAIRecommendationJobResponse{}): {members: []member{m("ai_recommendation_job_arn", "AIRecommendationJobArn")}},
}

// shapeOf returns the JSON shape of a message descriptor, or nil for a
// message the gateway does not carry.
func shapeOf(md protoreflect.MessageDescriptor) *shape { return shapes[md.FullName()] }

// byName finds the member of an AWS member name.
func (s *shape) byName(name string) (member, bool) {
	for _, mb := range s.members {
		if mb.name == name {
			return mb, true
		}
	}
	return member{}, false
}

// byField finds the member of a protobuf field.
func (s *shape) byField(field protoreflect.Name) (member, bool) {
	for _, mb := range s.members {
		if mb.field == field {
			return mb, true
		}
	}
	return member{}, false
}
