// Who may do what, in one place: the app's identity (and, optionally, the developer who ran
// azd, to run the host locally against Azure) gets data-plane roles only, each on the
// narrowest scope that works. No control-plane roles, no keys.

@description('Required. Object ID of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Optional. Object ID of a developer (azd sets AZURE_PRINCIPAL_ID) given the same data access; empty: none.')
param userPrincipalId string = ''

@description('Optional. Type of userPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Name of the Event Hubs namespace.')
param eventHubsNamespaceName string

@description('Required. Name of the activity hub.')
param eventHubName string

@description('Required. Name of the Cosmos DB account.')
param cosmosAccountName string

@description('Required. Name of the Azure Managed Redis cluster.')
param redisName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

// Storage Blob Data Owner: the Functions host's minimum on AzureWebJobsStorage (blob leases,
// checkpoints, the deployment package); it also covers the app's containers.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor: queue triggers, the simulation's queues and their -poison queues.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the host's diagnostic events.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Azure Event Hubs Data Receiver: the ingest trigger (and the scale controller) read the hub.
var eventHubsDataReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
// Azure Event Hubs Data Sender: POST /api/events and the offers function publish to the hub.
var eventHubsDataSender = '2b629674-e913-4c01-ae53-ef4638d8f975'
// Monitoring Metrics Publisher: Entra-authenticated telemetry into Application Insights.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Cosmos DB Built-in Data Contributor (a Cosmos SQL role, not an Azure role): data only.
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

var app = [
  {
    id: appPrincipalId
    type: 'ServicePrincipal'
  }
]
var user = [
  {
    id: userPrincipalId
    type: userPrincipalType
  }
]
var principals = empty(userPrincipalId) ? app : concat(app, user)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: eventHubName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource redis 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = {
  name: redisName
}

resource redisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' existing = {
  parent: redis
  name: 'default'
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(storage.id, principal.id, storageBlobDataOwner)
    scope: storage
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    }
  }
]

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(storage.id, principal.id, storageQueueDataContributor)
    scope: storage
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    }
  }
]

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(storage.id, principal.id, storageTableDataContributor)
    scope: storage
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    }
  }
]

resource hubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(hub.id, principal.id, eventHubsDataReceiver)
    scope: hub
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataReceiver)
    }
  }
]

resource hubSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(hub.id, principal.id, eventHubsDataSender)
    scope: hub
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventHubsDataSender)
    }
  }
]

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for principal in principals: {
    name: guid(applicationInsights.id, principal.id, monitoringMetricsPublisher)
    scope: applicationInsights
    properties: {
      principalId: principal.id
      principalType: principal.type
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    }
  }
]

resource cosmosData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = [
  for principal in principals: {
    parent: cosmos
    name: guid(cosmos.id, principal.id, cosmosDataContributor)
    properties: {
      principalId: principal.id
      roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
      scope: cosmos.id
    }
  }
]

// Redis data access is an access policy assignment on the database ('default' policy: the
// data commands, no admin ones). The cache accepts one control-plane change at a time.
@batchSize(1)
resource redisAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = [
  for principal in principals: {
    parent: redisDatabase
    name: replace(guid(redisDatabase.id, principal.id, 'default'), '-', '')
    properties: {
      accessPolicyName: 'default'
      user: {
        objectId: principal.id
      }
    }
  }
]
