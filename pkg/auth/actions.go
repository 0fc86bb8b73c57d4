package auth

import (
	"slices"
	"strings"
)

// The 14 SageMaker inference-optimization API operations, as IAM actions.
const (
	ActionCreateAIWorkloadConfig   = "sagemaker:CreateAIWorkloadConfig"
	ActionDescribeAIWorkloadConfig = "sagemaker:DescribeAIWorkloadConfig"
	ActionListAIWorkloadConfigs    = "sagemaker:ListAIWorkloadConfigs"
	ActionDeleteAIWorkloadConfig   = "sagemaker:DeleteAIWorkloadConfig"

	ActionCreateAIBenchmarkJob   = "sagemaker:CreateAIBenchmarkJob"
	ActionDescribeAIBenchmarkJob = "sagemaker:DescribeAIBenchmarkJob"
	ActionListAIBenchmarkJobs    = "sagemaker:ListAIBenchmarkJobs"
	ActionStopAIBenchmarkJob     = "sagemaker:StopAIBenchmarkJob"
	ActionDeleteAIBenchmarkJob   = "sagemaker:DeleteAIBenchmarkJob"

	ActionCreateAIRecommendationJob   = "sagemaker:CreateAIRecommendationJob"
	ActionDescribeAIRecommendationJob = "sagemaker:DescribeAIRecommendationJob"
	ActionListAIRecommendationJobs    = "sagemaker:ListAIRecommendationJobs"
	ActionStopAIRecommendationJob     = "sagemaker:StopAIRecommendationJob"
	ActionDeleteAIRecommendationJob   = "sagemaker:DeleteAIRecommendationJob"
)

// Tagging actions. Tag changes are further constrained with the
// aws:RequestTag/<k>, aws:ResourceTag/<k> and aws:TagKeys condition keys.
const (
	ActionTagResource   = "sagemaker:TagResource"
	ActionUntagResource = "sagemaker:UntagResource"
	ActionListTags      = "sagemaker:ListTags"
)

// Read-only perfleet extensions of the benchmark-job API. They act on
// SageMaker resources, so they live in the sagemaker: namespace and are
// matched by patterns such as "sagemaker:Get*".
const (
	ActionGetAIBenchmarkJobResults = "sagemaker:GetAIBenchmarkJobResults"
	ActionGetAIBenchmarkJobLog     = "sagemaker:GetAIBenchmarkJobLog"
	ActionWatchAIBenchmarkJob      = "sagemaker:WatchAIBenchmarkJob"
)

// Registered endpoints (a perfleet extension standing in for SageMaker
// endpoints; ARN arn:…:sagemaker:<region>:<account>:endpoint/<name>).
const (
	ActionRegisterEndpoint   = "sagemaker:RegisterEndpoint"
	ActionDescribeEndpoint   = "sagemaker:DescribeEndpoint"
	ActionListEndpoints      = "sagemaker:ListEndpoints"
	ActionDeregisterEndpoint = "sagemaker:DeregisterEndpoint"
)

// perfleet administration actions: identities, credentials, policies, roles,
// audit, secrets, keyring, fleet and cluster operations.
const (
	ActionCreatePrincipal = "perfleet:CreatePrincipal"
	ActionGetPrincipal    = "perfleet:GetPrincipal"
	ActionListPrincipals  = "perfleet:ListPrincipals"
	ActionDeletePrincipal = "perfleet:DeletePrincipal"

	ActionCreateToken = "perfleet:CreateToken"
	ActionListTokens  = "perfleet:ListTokens"
	ActionRevokeToken = "perfleet:RevokeToken"

	ActionCreateAccessKey = "perfleet:CreateAccessKey"
	ActionListAccessKeys  = "perfleet:ListAccessKeys"
	ActionRevokeAccessKey = "perfleet:RevokeAccessKey"

	ActionPutPolicy    = "perfleet:PutPolicy"
	ActionGetPolicy    = "perfleet:GetPolicy"
	ActionListPolicies = "perfleet:ListPolicies"
	ActionDeletePolicy = "perfleet:DeletePolicy"
	ActionAttachPolicy = "perfleet:AttachPolicy"
	ActionDetachPolicy = "perfleet:DetachPolicy"

	ActionCreateRole = "perfleet:CreateRole"
	ActionGetRole    = "perfleet:GetRole"
	ActionListRoles  = "perfleet:ListRoles"
	ActionDeleteRole = "perfleet:DeleteRole"
	// ActionPassRole is required on a role's ARN to create a job that acts
	// as that role, in the manner of iam:PassRole.
	ActionPassRole = "perfleet:PassRole"

	ActionLookupEvents = "perfleet:LookupEvents"
	ActionExportEvents = "perfleet:ExportEvents"

	ActionPutSecret    = "perfleet:PutSecret"
	ActionListSecrets  = "perfleet:ListSecrets"
	ActionDeleteSecret = "perfleet:DeleteSecret"
	// ActionGetSecretValue is what a job's role needs on a secret for
	// perfleet to hand the value to the job's agents; no API returns it.
	ActionGetSecretValue = "perfleet:GetSecretValue"

	ActionListGossipKeys   = "perfleet:ListGossipKeys"
	ActionInstallGossipKey = "perfleet:InstallGossipKey"
	ActionUseGossipKey     = "perfleet:UseGossipKey"
	ActionRemoveGossipKey  = "perfleet:RemoveGossipKey"

	ActionListAgents        = "perfleet:ListAgents"
	ActionDescribeAgent     = "perfleet:DescribeAgent"
	ActionLaunchModelServer = "perfleet:LaunchModelServer"
	ActionStopModelServer   = "perfleet:StopModelServer"

	ActionServerInfo         = "perfleet:ServerInfo"
	ActionStateHash          = "perfleet:StateHash"
	ActionSnapshotSave       = "perfleet:SnapshotSave"
	ActionSnapshotRestore    = "perfleet:SnapshotRestore"
	ActionRaftListPeers      = "perfleet:RaftListPeers"
	ActionRaftRemovePeer     = "perfleet:RaftRemovePeer"
	ActionRaftTransferLeader = "perfleet:RaftTransferLeader"
)

var sageMakerActions = []string{
	ActionCreateAIWorkloadConfig, ActionDescribeAIWorkloadConfig, ActionListAIWorkloadConfigs, ActionDeleteAIWorkloadConfig,
	ActionCreateAIBenchmarkJob, ActionDescribeAIBenchmarkJob, ActionListAIBenchmarkJobs, ActionStopAIBenchmarkJob, ActionDeleteAIBenchmarkJob,
	ActionCreateAIRecommendationJob, ActionDescribeAIRecommendationJob, ActionListAIRecommendationJobs, ActionStopAIRecommendationJob, ActionDeleteAIRecommendationJob,
}

var tagActions = []string{ActionTagResource, ActionUntagResource, ActionListTags}

var extensionActions = []string{ActionGetAIBenchmarkJobResults, ActionGetAIBenchmarkJobLog, ActionWatchAIBenchmarkJob,
	ActionRegisterEndpoint, ActionDescribeEndpoint, ActionListEndpoints, ActionDeregisterEndpoint}

var adminActions = []string{
	ActionCreatePrincipal, ActionGetPrincipal, ActionListPrincipals, ActionDeletePrincipal,
	ActionCreateToken, ActionListTokens, ActionRevokeToken,
	ActionCreateAccessKey, ActionListAccessKeys, ActionRevokeAccessKey,
	ActionPutPolicy, ActionGetPolicy, ActionListPolicies, ActionDeletePolicy, ActionAttachPolicy, ActionDetachPolicy,
	ActionCreateRole, ActionGetRole, ActionListRoles, ActionDeleteRole, ActionPassRole,
	ActionLookupEvents, ActionExportEvents,
	ActionPutSecret, ActionListSecrets, ActionDeleteSecret, ActionGetSecretValue,
	ActionListGossipKeys, ActionInstallGossipKey, ActionUseGossipKey, ActionRemoveGossipKey,
	ActionListAgents, ActionDescribeAgent, ActionLaunchModelServer, ActionStopModelServer,
	ActionServerInfo, ActionStateHash, ActionSnapshotSave, ActionSnapshotRestore, ActionRaftListPeers, ActionRaftRemovePeer, ActionRaftTransferLeader,
}

// knownActions maps the lower-cased action name to its canonical spelling.
var knownActions = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{sageMakerActions, tagActions, extensionActions, adminActions} {
		for _, a := range list {
			m[strings.ToLower(a)] = a
		}
	}
	return m
}()

// SageMakerActions returns the 14 SageMaker inference-optimization actions
// (workload configs, benchmark jobs, recommendation jobs).
func SageMakerActions() []string { return slices.Clone(sageMakerActions) }

// TagActions returns sagemaker:TagResource, sagemaker:UntagResource and
// sagemaker:ListTags.
func TagActions() []string { return slices.Clone(tagActions) }

// ExtensionActions returns the read-only perfleet extensions of the
// benchmark-job API (results, log, watch).
func ExtensionActions() []string { return slices.Clone(extensionActions) }

// AdminActions returns the perfleet: administration actions.
func AdminActions() []string { return slices.Clone(adminActions) }

// Actions returns every action perfleet authorizes, in a stable order.
func Actions() []string {
	return slices.Concat(sageMakerActions, tagActions, extensionActions, adminActions)
}

// IsKnownAction reports whether action (compared case-insensitively, as IAM
// does) is one of Actions.
func IsKnownAction(action string) bool {
	_, ok := knownActions[strings.ToLower(action)]
	return ok
}
