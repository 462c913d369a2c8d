// Azure Managed Redis: the cold-start lists and the simulation's counters. Access keys are
// disabled; clients sign in with Microsoft Entra ID (access policy assignments in rbac.bicep).

@description('Required. Name of the Azure Managed Redis cluster.')
param name string

@description('Optional. Region of the cluster.')
param location string = resourceGroup().location

@description('Optional. Tags of the cluster.')
param tags object = {}

@description('Optional. SKU (Balanced_B0 is the smallest: 0.5 GB).')
param skuName string = 'Balanced_B0'

@description('Optional. Replicate to a second node (doubles the price; the data here is recomputable).')
param highAvailability bool = false

@description('Optional. NoCluster keeps every key on one shard, so MULTI/EXEC and multi-key commands across keys work with a plain client; EnterpriseCluster shards behind a proxy (larger SKUs).')
@allowed([
  'NoCluster'
  'EnterpriseCluster'
])
param clusteringPolicy string = 'NoCluster'

@description('Optional. Reachable only through private endpoints (public network access disabled).')
param privateNetworking bool = false

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    accessKeysAuthentication: 'Disabled'
    clientProtocol: 'Encrypted'
    clusteringPolicy: clusteringPolicy
    evictionPolicy: 'VolatileLRU'
    port: 10000
    persistence: {
      aofEnabled: false
      rdbEnabled: false
    }
  }
}

resource clusterDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: cluster
  properties: {
    workspaceId: logAnalyticsResourceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// Connection events (who connected, authenticated, disconnected) are the database's logs.
resource databaseDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: database
  properties: {
    workspaceId: logAnalyticsResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

@description('The name of the cluster.')
output name string = cluster.name

@description('The resource ID of the cluster.')
output resourceId string = cluster.id

@description('The host name clients connect to with TLS.')
output hostName string = cluster.properties.hostName

@description('The TLS port of the database.')
output port int = database.properties.port
