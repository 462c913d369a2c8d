// Cosmos DB for NoSQL: the catalog, the users' profiles and the offer statistics. Key
// (local) auth is disabled: the app signs in with its identity (SQL role in rbac.bicep).

@description('Required. Name of the Cosmos DB account.')
param name string

@description('Optional. Region of the account (single region).')
param location string = resourceGroup().location

@description('Optional. Tags of the account.')
param tags object = {}

@description('Required. Name of the database (the app\'s COSMOS_DATABASE).')
param databaseName string

@description('Required. Containers: [{ name, partitionKey, indexingPolicy }].')
param containers array

@description('Optional. serverless (pay per request, for light and bursty use) or autoscale (provisioned RU/s shared by the database, scaling between 10% and the maximum).')
@allowed([
  'serverless'
  'autoscale'
])
param capacityMode string = 'serverless'

@description('Optional. Most RU/s the database scales to in autoscale mode.')
@minValue(1000)
param autoscaleMaxThroughput int = 1000

@description('Optional. Reachable only through private endpoints (public network access disabled).')
param privateNetworking bool = false

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_99: with privateNetworking public access is disabled; without it the Flex Consumption app has no fixed egress address to allow, and only Entra identities with a SQL role can reach data
  // checkov:skip=CKV_AZURE_101: public network access is disabled with privateNetworking; without it the app needs the public endpoint (keys are disabled, Entra only)
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: capacityMode == 'serverless' ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAclBypass: 'None'
    enableAutomaticFailover: false
    enableFreeTier: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: capacityMode == 'serverless' ? {} : { autoscaleSettings: { maxThroughput: autoscaleMaxThroughput } }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for container in containers: {
    parent: database
    name: container.name
    properties: {
      resource: {
        id: container.name
        partitionKey: {
          paths: [
            container.partitionKey
          ]
          kind: 'Hash'
          version: 2
        }
        indexingPolicy: container.indexingPolicy
      }
    }
  }
]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsResourceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Requests'
        enabled: true
      }
    ]
  }
}

@description('The name of the account.')
output name string = account.name

@description('The resource ID of the account.')
output resourceId string = account.id

@description('The account endpoint (https://<name>.documents.azure.com:443/).')
output endpoint string = account.properties.documentEndpoint

@description('The name of the database.')
output databaseName string = database.name
