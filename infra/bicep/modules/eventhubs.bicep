// The Event Hubs namespace and the activity hub every event goes through (partition key =
// userId), with one consumer group per reader. Local (SAS) auth is disabled: identity only.

@description('Required. Name of the Event Hubs namespace.')
param name string

@description('Optional. Region of the namespace.')
param location string = resourceGroup().location

@description('Optional. Tags of the namespace.')
param tags object = {}

@description('Required. Name of the activity hub (the app\'s EVENTHUB_NAME).')
param eventHubName string

@description('Optional. Partitions of the hub: the most ingest instances that read in parallel. Fixed once created on the Standard tier.')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('Optional. Days the hub keeps events (the raw archive in Blob keeps them for good).')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 1

@description('Required. Consumer groups of the hub (Standard tier: up to 20).')
param consumerGroups array

@description('Optional. Throughput units (1 MB/s or 1,000 events/s in each).')
@minValue(1)
@maxValue(40)
param capacity int = 1

@description('Optional. Reachable only through private endpoints (public network access disabled).')
param privateNetworking bool = false

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

// Standard, not Basic: Basic allows only the $Default consumer group.
resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    isAutoInflateEnabled: false
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource groups 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [
  for group in consumerGroups: {
    parent: hub
    name: group
    properties: {}
  }
]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
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
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

@description('The name of the namespace.')
output name string = namespace.name

@description('The resource ID of the namespace.')
output resourceId string = namespace.id

@description('The resource ID of the activity hub (the scope of the app\'s data roles).')
output eventHubResourceId string = hub.id

@description('The name of the activity hub.')
output eventHubName string = hub.name

@description('The fully qualified namespace (<name>.servicebus.windows.net) for identity-based connections.')
// serviceBusEndpoint is https://<name>.servicebus.windows.net:443/ (another suffix in sovereign clouds).
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
