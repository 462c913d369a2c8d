// The storage account: the Functions host's own storage (AzureWebJobsStorage: leases, Event
// Hubs checkpoints, timers), the Flex Consumption deployment package, the app's blob
// containers and the simulation's queues. Shared key access is disabled: identity only.

@description('Required. Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Region of the account.')
param location string = resourceGroup().location

@description('Optional. Tags of the account.')
param tags object = {}

@description('Required. Blob containers to create (the app\'s and the deployment package\'s).')
param containers array

@description('Required. Storage queues to create.')
param queues array

@description('Optional. Replication of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Optional. Reachable only through private endpoints (public network access disabled).')
param privateNetworking bool = false

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

@description('Optional. Days deleted blobs and containers can be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

// Without private networking the Flex Consumption app reaches the account over the public
// endpoint (Functions is not a trusted service that a Deny rule lets through), so the
// default action stays Allow there; identity-only access (no shared keys, no anonymous
// blobs) is what guards it. With private networking, public access is off altogether.
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the default action is Deny with privateNetworking; without it the app needs the public endpoint, and shared keys and anonymous access are disabled
  // checkov:skip=CKV_AZURE_206: LRS keeps the default cost low (11 nines within one datacenter); the raw archive is the long-term event log, so production should set STORAGE_SKU_NAME (main.parameters.json) to Standard_ZRS or Standard_GZRS
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queues: {
    parent: queueService
    name: queue
  }
]

// The host keeps diagnostic events in tables when it may (Storage Table Data Contributor).
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// Storage logs are per service; the account itself has metrics only.
resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsResourceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

@description('The name of the storage account.')
output name string = account.name

@description('The resource ID of the storage account.')
output resourceId string = account.id

@description('The blob service endpoint (https://<name>.blob.core.windows.net/).')
output blobEndpoint string = account.properties.primaryEndpoints.blob

@description('The queue service endpoint.')
output queueEndpoint string = account.properties.primaryEndpoints.queue

@description('The table service endpoint.')
output tableEndpoint string = account.properties.primaryEndpoints.table
